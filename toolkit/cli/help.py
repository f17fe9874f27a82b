"""The CLI's help: a one-line description and a runnable example for every sub-command.

Kept apart from the parser so that the table reads as documentation, and so that a test can
check that every sub-command the parser knows has an entry here (and nothing more).
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["HELP", "document", "commands"]

# (noun, verb or None) -> (one line, example)
HELP: dict[tuple[str, str | None], tuple[str, str]] = {
    ("up", None): ("start the host in the background (the SDK and every command talk to it)",
                   "endpoints up --port 5080"),
    ("down", None): ("stop the host and every instance and worker it started", "endpoints down"),
    ("status", None): ("the host's URL, pid, uptime, registry and what it holds", "endpoints status"),
    ("demo", None): ("register the demo models and run the online and batch tour", "endpoints demo"),
    ("tui", None): ("the terminal UI", "endpoints tui"),
    ("models", None): ("models in the workspace's MLflow registry", "endpoints models list"),
    ("models", "list"): ("registered models with versions, aliases, flavors and signatures", "endpoints models list"),
    ("models", "show"): ("one model: every version's signature and input example", "endpoints models show churn"),
    ("online-endpoint", None): ("online endpoints: a stable scoring URL, auth and a traffic table",
                                "endpoints online-endpoint list"),
    ("online-endpoint", "create"): ("create an online endpoint from a YAML spec",
                                    "endpoints online-endpoint create -f examples/churn-endpoint.yml"),
    ("online-endpoint", "update"): ("change an endpoint's spec, traffic or mirrored traffic",
                                    'endpoints online-endpoint update --name churn --traffic "blue=90 green=10"'),
    ("online-endpoint", "show"): ("one endpoint: URLs, traffic, deployments", "endpoints online-endpoint show --name churn"),
    ("online-endpoint", "list"): ("every online endpoint", "endpoints online-endpoint list -o json"),
    ("online-endpoint", "delete"): ("delete an endpoint and all its deployments",
                                    "endpoints online-endpoint delete --name churn"),
    ("online-endpoint", "invoke"): ("score a request file through the endpoint (as a client would)",
                                    "endpoints online-endpoint invoke --name churn --request-file examples/churn-request.json"),
    ("online-endpoint", "get-credentials"): ("the endpoint's keys (or a fresh token)",
                                             "endpoints online-endpoint get-credentials --name churn"),
    ("online-endpoint", "regenerate-keys"): ("renew a key, or the token-signing secret (revokes issued tokens)",
                                             "endpoints online-endpoint regenerate-keys --name churn --key-type secondary"),
    ("online-deployment", None): ("online deployments: a model served by supervised instances",
                                  "endpoints online-deployment list --endpoint-name churn"),
    ("online-deployment", "create"): ("deploy a model to an endpoint, showing its instances as they start",
                                      "endpoints online-deployment create -f examples/churn-blue.yml --all-traffic"),
    ("online-deployment", "update"): ("roll out a changed spec (new instances start before old ones stop)",
                                      "endpoints online-deployment update -f examples/churn-blue.yml --set instance_count=3"),
    ("online-deployment", "show"): ("one deployment: instances, resources and recent events",
                                    "endpoints online-deployment show --endpoint-name churn --name blue"),
    ("online-deployment", "list"): ("the deployments of an endpoint", "endpoints online-deployment list --endpoint-name churn"),
    ("online-deployment", "delete"): ("delete a deployment that has no live traffic",
                                      "endpoints online-deployment delete --endpoint-name churn --name green"),
    ("online-deployment", "get-logs"): ("the instances' logs (--follow to keep printing)",
                                        "endpoints online-deployment get-logs --endpoint-name churn --name blue --follow"),
    ("online-deployment", "test"): ("score a spec in this process with the server's parsing, creating nothing",
                                    "endpoints online-deployment test -f examples/churn-blue.yml "
                                    "--request-file examples/churn-request.json"),
    ("batch-endpoint", None): ("batch endpoints: invoking one creates a job over files",
                               "endpoints batch-endpoint list"),
    ("batch-endpoint", "create"): ("create a batch endpoint from a YAML spec",
                                   "endpoints batch-endpoint create -f examples/oj-sales-endpoint.yml"),
    ("batch-endpoint", "update"): ("change a batch endpoint (its description or default deployment)",
                                   "endpoints batch-endpoint update -f examples/oj-sales-endpoint.yml"),
    ("batch-endpoint", "show"): ("one batch endpoint", "endpoints batch-endpoint show --name oj-sales"),
    ("batch-endpoint", "list"): ("every batch endpoint", "endpoints batch-endpoint list"),
    ("batch-endpoint", "delete"): ("delete a batch endpoint and its deployments",
                                   "endpoints batch-endpoint delete --name oj-sales"),
    ("batch-endpoint", "invoke"): ("start a job over a folder, file, glob or URL of CSV/Parquet files",
                                   "endpoints batch-endpoint invoke --name oj-sales --input ./weekly/ --stream"),
    ("batch-deployment", None): ("batch deployments: a model scored on a Dask cluster",
                                 "endpoints batch-deployment list --endpoint-name oj-sales"),
    ("batch-deployment", "create"): ("add a deployment to a batch endpoint (--set-default to make it the default)",
                                     "endpoints batch-deployment create -f examples/oj-sales-deployment.yml --set-default"),
    ("batch-deployment", "update"): ("change a batch deployment's settings",
                                     "endpoints batch-deployment update -f examples/oj-sales-deployment.yml --set mini_batch_size=8"),
    ("batch-deployment", "show"): ("one batch deployment", "endpoints batch-deployment show --endpoint-name oj-sales --name forest"),
    ("batch-deployment", "list"): ("the deployments of a batch endpoint",
                                   "endpoints batch-deployment list --endpoint-name oj-sales"),
    ("batch-deployment", "delete"): ("delete a batch deployment",
                                     "endpoints batch-deployment delete --endpoint-name oj-sales --name forest"),
    ("job", None): ("batch jobs: show, list, follow or cancel", "endpoints job list"),
    ("job", "show"): ("one job: state, progress, outputs", "endpoints job show oj-sales-20250101-120000-ab12"),
    ("job", "list"): ("jobs, newest first (filter by endpoint or state)", "endpoints job list --state Running"),
    ("job", "stream"): ("follow a job's progress and events until it ends (Ctrl-C only stops watching)",
                        "endpoints job stream oj-sales-20250101-120000-ab12"),
    ("job", "cancel"): ("cancel a queued or running job", "endpoints job cancel oj-sales-20250101-120000-ab12"),
    ("advise", None): ("recommend online or batch for a workload, measured on the model (--apply deploys it)",
                       "endpoints advise -f examples/workload-oj-weekly.yml"),
}


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def commands(parser: argparse.ArgumentParser) -> list[tuple[str, str | None]]:
    """Every (noun, verb) the parser accepts, nouns with verbs also as (noun, None)."""
    out: list[tuple[str, str | None]] = []
    top = _subparsers(parser)
    for noun, sub in (top.choices.items() if top else []):
        out.append((noun, None))
        verbs = _subparsers(sub)
        for verb in (verbs.choices if verbs else {}):
            out.append((noun, verb))
    return out


def _describe(action: argparse._SubParsersAction, noun: str, verb: str | None) -> None:
    name = verb or noun
    line, example = HELP[(noun, verb)]
    sub: Any = action.choices[name]
    sub.description = line[0].upper() + line[1:] + "."
    sub.epilog = f"example:\n  {example}"
    sub.formatter_class = argparse.RawDescriptionHelpFormatter



def _list_commands(action: argparse._SubParsersAction, noun: str | None) -> None:
    """The parent's list of commands, one line each, in the order they were added (argparse
    lists only the ones added with ``help=``)."""
    action._choices_actions[:] = [
        action._ChoicesPseudoAction(name, (), HELP[(name, None) if noun is None else (noun, name)][0])
        for name in action.choices
    ]


def document(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give every sub-command its line and example; a missing entry is a bug caught by tests."""
    top = _subparsers(parser)
    assert top is not None
    examples = []
    _list_commands(top, None)
    for noun, sub in top.choices.items():
        _describe(top, noun, None)
        examples.append(f"  {HELP[(noun, None)][1]}")
        verbs = _subparsers(sub)
        if verbs is not None:
            verbs.metavar = "VERB"
            _list_commands(verbs, noun)
            for verb in verbs.choices:
                _describe(verbs, noun, verb)
            sub.epilog = "examples:\n" + "\n".join(f"  {HELP[(noun, v)][1]}" for v in verbs.choices)
    parser.epilog = ("examples:\n" + "\n".join(examples) +
                     "\n\n`endpoints COMMAND --help` shows a command's verbs; `endpoints COMMAND VERB --help` its options.")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser
