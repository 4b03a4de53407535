"""The `ftm` command: the operator commands of `service.cli` and the client commands for people,
which talk to a running service over HTTP."""

from __future__ import annotations

import os
from typing import Any

import click
import openai

from ftmcli import (
    api_keys,
    ask,
    data,
    deployments,
    evals,
    files,
    jobs,
    login,
    models,
    tenants,
    usage,
    webhooks,
)
from ftmcli.errors import from_sdk
from ftmcli.state import State
from service import cli as operator_cli


class FtmGroup(click.Group):
    """Turns the SDK's errors into one-line `CliError`s wherever a command raised them."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except openai.APIError as error:
            state = ctx.find_object(State)
            raise from_sdk(error, state.base_url if state else "the service") from error


@click.group(cls=FtmGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--profile", default=None, envvar="FTM_PROFILE", help="A profile written by `ftm login`.")
@click.pass_context
def main(ctx: click.Context, profile: str | None) -> None:
    """finetune-manager: an OpenAI-compatible control plane for fine-tuning.

    Client commands (login, whoami, files, jobs, models, deployments, usage, tenants, api-keys, webhooks, evals, ask,
    chat) talk to a running service: FTM_BASE_URL and
    FTM_API_KEY, or a profile that `ftm login` wrote; `data prepare` runs locally. Every one takes --json.
    """
    state = State(os.environ, profile)
    ctx.obj = state
    ctx.call_on_close(state.close)


for _name, _command in operator_cli.main.commands.items():
    main.add_command(_command, _name)
main.add_command(login.login)
main.add_command(login.whoami)
main.add_command(data.data)
main.add_command(files.files)
main.add_command(jobs.jobs)
main.add_command(models.models)
main.add_command(deployments.deployments)
main.add_command(webhooks.webhooks)
main.add_command(usage.usage)
main.add_command(tenants.tenants)
main.add_command(api_keys.api_keys)
main.add_command(evals.evals)
main.add_command(ask.ask)
main.add_command(ask.chat)
