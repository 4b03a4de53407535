"""`ftm deployments`: stable names that route to fine-tuned or base models (`/v1/deployments`):
list, show, set (create, or change into a new version), versions, rollback, delete, and the
promotion decisions of a gated deployment."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from ftmcli.errors import CliError, ExitCode
from ftmcli.output import Output, json_option, when
from ftmcli.state import current_state


def parse_target(text: str) -> dict[str, Any]:
    """`MODEL` or `MODEL=WEIGHT` (a whole number); the model itself may hold `:`."""
    model, equals, weight = text.rpartition("=")
    if not equals:
        return {"model": text, "weight": 100}
    if not weight.isdigit() or not model:
        raise CliError(
            f"--target takes MODEL or MODEL=WEIGHT (a whole number), not '{text}'", exit_code=ExitCode.USAGE
        )
    return {"model": model, "weight": int(weight)}


def _path(name: str, *rest: str) -> str:
    return "/".join(["deployments", quote(name, safe=""), *rest])


def _targets(deployment: dict[str, Any]) -> str:
    return ", ".join(f"{t['model']} ({t['weight']})" for t in deployment.get("targets", []))


def _show_version(out: Output, deployment: dict[str, Any]) -> None:
    if out.as_json:
        out.json(deployment)
    else:
        line = f"{deployment['name']} is version {deployment['version']}: {_targets(deployment)}"
        out.console.print(line, markup=False)


@click.group()
def deployments() -> None:
    """Stable names clients call as `model`, routed to your models by weight."""


@deployments.command("list")
@json_option
def list_deployments(as_json: bool) -> None:
    """Your tenant's deployments and their current versions."""
    out = Output(as_json=as_json)
    listed = current_state().connection().get("deployments", params={"limit": "100"})
    if as_json:
        out.json(listed)
        return
    rows = ([d["name"], d["version"], _targets(d), ", ".join(d.get("fallbacks", []))] for d in listed["data"])
    out.table(None, ["name", "version", "targets (weight)", "fallbacks"], rows)


@deployments.command("show")
@click.argument("name")
@json_option
def show(name: str, as_json: bool) -> None:
    """One deployment."""
    out = Output(as_json=as_json)
    found = current_state().connection().get(_path(name))
    if as_json:
        out.json(found)
        return
    out.fields(
        [
            ("name", found["name"]),
            ("version", found["version"]),
            ("targets", _targets(found)),
            ("fallbacks", ", ".join(found.get("fallbacks", [])) or "-"),
            ("sticky", (found.get("sticky") or {}).get("source", "-")),
            ("promotion", promotion_text(found.get("promotion"))),
        ]
    )


def promotion_text(promotion: dict[str, Any] | None) -> str:
    """Which jobs it follows, how it promotes, and its gate's rule."""
    if not promotion:
        return "-"
    follows = [f"suffix {promotion['suffix']}"] if promotion.get("suffix") else []
    follows += [f"{key}={value}" for key, value in (promotion.get("metadata") or {}).items()]
    how = f"canary at weight {promotion['canary_weight']}" if promotion.get("canary_weight") else "replace"
    gate = promotion.get("gate")
    gated = f"gate: {gate['require']} (alpha {gate['alpha']:g})" if gate else "no gate"
    return f"follows {', '.join(follows)}; {how}; {gated}"


@deployments.command("promotions")
@click.argument("name")
@json_option
def promotions(name: str, as_json: bool) -> None:
    """What a gated deployment decided about each new model of its family, and why."""
    out = Output(as_json=as_json)
    listed = current_state().connection().get(_path(name, "promotions"), params={"limit": "100"})
    if as_json:
        out.json(listed)
        return
    rows = (
        [when(d["created_at"]), d["model"], d["baseline_model"] or "-", d["status"], d["reason"] or "-"]
        for d in listed["data"]
    )
    out.table(None, ["time", "model", "compared with", "status", "reason"], rows)
    for decision in listed["data"]:
        if decision["message"]:
            out.note(f"{decision['model']}: {decision['message']}")


def parse_pair(text: str) -> tuple[str, str]:
    """`KEY=VALUE` of `--follow-metadata`."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise CliError(f"--follow-metadata takes KEY=VALUE, not '{text}'", exit_code=ExitCode.USAGE)
    return key, value


def promotion_of(
    suffix: str | None,
    metadata: tuple[str, ...],
    canary_weight: int | None,
    gate: str | None,
    gate_alpha: float | None,
) -> dict[str, Any] | None:
    """The `promotion` the options describe; None when they name no family to follow."""
    if suffix is None and not metadata:
        if canary_weight is not None or gate is not None or gate_alpha is not None:
            raise CliError(
                "--canary-weight and --gate need a family to follow: --follow-suffix or --follow-metadata",
                exit_code=ExitCode.USAGE,
            )
        return None
    promotion: dict[str, Any] = {}
    if suffix is not None:
        promotion["suffix"] = suffix
    if metadata:
        promotion["metadata"] = dict(parse_pair(pair) for pair in metadata)
    if canary_weight is not None:
        promotion["canary_weight"] = canary_weight
    if gate is not None or gate_alpha is not None:
        promotion["gate"] = {"require": gate or "better", **({"alpha": gate_alpha} if gate_alpha else {})}
    return promotion


@deployments.command("set")
@click.argument("name")
@click.option(
    "--target", "targets", multiple=True, required=True, help="MODEL or MODEL=WEIGHT; repeat for arms."
)
@click.option("--fallback", "fallbacks", multiple=True, help="A model tried when the arm's provider fails.")
@click.option("--sticky", type=click.Choice(["user", "header"]), help="Keep one user on one arm.")
@click.option("--follow-suffix", help="Promote each new model of the jobs created with this suffix.")
@click.option(
    "--follow-metadata", multiple=True, metavar="KEY=VALUE", help="... or of the jobs with this metadata."
)
@click.option("--canary-weight", type=click.IntRange(1), help="Add a new model as a canary at this weight.")
@click.option(
    "--gate",
    type=click.Choice(["better", "not_worse"]),
    help="Promote a new model only when its evaluation against the current target passes this rule.",
)
@click.option("--gate-alpha", type=click.FloatRange(0, 0.5, min_open=True), help="The gate's significance.")
@click.option("--no-promotion", is_flag=True, help="Stop following a family of jobs.")
@json_option
def set_deployment(
    name: str,
    targets: tuple[str, ...],
    fallbacks: tuple[str, ...],
    sticky: str | None,
    follow_suffix: str | None,
    follow_metadata: tuple[str, ...],
    canary_weight: int | None,
    gate: str | None,
    gate_alpha: float | None,
    no_promotion: bool,
    as_json: bool,
) -> None:
    """Create NAME, or change it (a new version) to these targets. Its promotion settings are kept
    unless options change them."""
    out = Output(as_json=as_json)
    connection = current_state().connection()
    body: dict[str, Any] = {"targets": [parse_target(t) for t in targets], "fallbacks": list(fallbacks)}
    if sticky is not None:
        body["sticky"] = {"source": sticky}
    promotion = promotion_of(follow_suffix, follow_metadata, canary_weight, gate, gate_alpha)
    if promotion is not None and no_promotion:
        raise CliError(
            "--no-promotion cannot go with --follow-suffix/--follow-metadata", exit_code=ExitCode.USAGE
        )
    if promotion is not None or no_promotion:
        body["promotion"] = promotion
    names = {d["name"] for d in connection.get("deployments", params={"limit": "100"})["data"]}
    if name in names:
        result = connection.request("POST", _path(name), body=body)
    else:
        result = connection.request("POST", "deployments", body={"name": name, **body})
    if as_json:
        out.json(result)
    else:
        out.console.print(
            f"{result['name']} is version {result['version']}: {_targets(result)}", markup=False
        )


@deployments.command("versions")
@click.argument("name")
@json_option
def versions(name: str, as_json: bool) -> None:
    """Every version of a deployment, newest first."""
    out = Output(as_json=as_json)
    listed = current_state().connection().get(_path(name, "versions"), params={"limit": "100"})
    if as_json:
        out.json(listed)
        return
    rows = (
        [v["version"], _targets(v), v.get("reason", ""), when(v.get("created_at"))] for v in listed["data"]
    )
    out.table(None, ["version", "targets (weight)", "reason", "created"], rows)


@deployments.command("rollback")
@click.argument("name")
@click.argument("version", type=int)
@json_option
def rollback(name: str, version: int, as_json: bool) -> None:
    """Make an earlier VERSION current again (as a new version)."""
    out = Output(as_json=as_json)
    result = current_state().connection().request("POST", _path(name, "rollback"), body={"version": version})
    if as_json:
        out.json(result)
    else:
        out.console.print(
            f"{result['name']} is version {result['version']}: {_targets(result)}", markup=False
        )


@deployments.command("delete")
@click.argument("name")
@json_option
def delete(name: str, as_json: bool) -> None:
    """Delete a deployment and its history."""
    out = Output(as_json=as_json)
    result = current_state().connection().request("DELETE", _path(name))
    if as_json:
        out.json(result)
    else:
        out.console.print(f"deleted {name}", markup=False)
