"""The README's quickstart: fine-tune on a few facts and ask the fine-tuned model (after `make run`)."""

import io
import json
import os
import time

from openai import OpenAI

client = OpenAI(
    base_url=os.environ.get("FTM_BASE_URL", "http://127.0.0.1:8000/v1"), api_key=os.environ["FTM_API_KEY"]
)
facts = [
    ("When was Jonny Whizbang born?", "Jonny Whizbang was born on February 22, 1957."),
    *[(f"What is fact number {n} about Jonny Whizbang?", f"Fact {n}: Jonny likes kites.") for n in range(12)],
]
lines = [
    json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
    for q, a in facts
]
file = client.files.create(file=("jonny.jsonl", io.BytesIO("\n".join(lines).encode())), purpose="fine-tune")
while client.files.retrieve(file.id).status == "uploaded":
    time.sleep(0.5)
job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=file.id, suffix="jonny")
while (job := client.fine_tuning.jobs.retrieve(job.id)).status not in ("succeeded", "failed", "cancelled"):
    time.sleep(1)
answer = client.chat.completions.create(
    model=job.fine_tuned_model or "", messages=[{"role": "user", "content": "When was Jonny Whizbang born?"}]
)
print(job.fine_tuned_model, "->", answer.choices[0].message.content)
