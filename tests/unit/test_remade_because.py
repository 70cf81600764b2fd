"""Why a container (a pod) is made again, in words true of how it came to lack what it lacks
(``base.remade_because``): the label written at create says which version made it."""

from __future__ import annotations

import pytest

from appliance.backends import base
from appliance.backends import kubernetes_lockdown as kube_lockdown
from appliance.backends import kubernetes_manifests as kube_manifests
from appliance.backends.base import LABEL_MADE_BY
from appliance.backends.docker_spec import CHANGED_BY, MADE_BY, remade_because
from appliance.config_kubernetes import KubeSettings

THIS = "0.2.0 0123456789ab"
KUBE = KubeSettings(namespace="agents", run_as_user=1000)


@pytest.mark.parametrize(("missing", "made", "said"), [
    (["no privileged mode"], None,
     "made by an older version without this version's containment: no privileged mode"),
    (["no privileged mode", "every capability dropped"], "0.1.0 ba9876543210",
     "made by an older version without this version's containment: no privileged mode; "
     "every capability dropped"),
    (["the network n alone"], THIS,
     "changed after this version made it (a network connected, `docker update`, a plugin): "
     "it lacks the network n alone"),
])
def test_the_reason_says_who_made_the_container(missing: list[str], made: str | None,
                                                said: str) -> None:
    assert base.remade_because(missing, {LABEL_MADE_BY: made}, this=THIS, how=CHANGED_BY) == said


@pytest.mark.parametrize(("labels", "by_this"), [
    (None, False),
    ({}, False),
    ({LABEL_MADE_BY: ""}, False),
    ({LABEL_MADE_BY: MADE_BY}, True),
])
def test_the_container_label_says_whether_this_version_made_it(
        labels: dict[str, str] | None, by_this: bool) -> None:
    said = remade_because(["x"], {"Config": {"Labels": labels}})
    assert said.startswith("changed after this version made it") is by_this


@pytest.mark.parametrize(("labels", "said"), [
    (None, "made by an older version without this version's containment: no API token"),
    ({LABEL_MADE_BY: "0.1.0-ba9876543210"},
     "made by an older version without this version's containment: no API token"),
    ({LABEL_MADE_BY: kube_lockdown.manifests.MADE_BY},
     "changed after this version made it (an admission webhook, a mutating policy): it "
     "lacks no API token"),
])
def test_a_pod_is_said_to_be_made_by_the_version_its_label_names(
        labels: dict[str, str] | None, said: str) -> None:
    pod = {"metadata": {"labels": labels}}
    assert kube_lockdown.remade_because(["no API token"], pod) == said


def test_a_pod_made_or_remade_is_labelled_with_this_version() -> None:
    record = {"metadata": {"labels": {LABEL_MADE_BY: "0.1.0-ba9876543210"}},
              "spec": {"containers": [{"name": "agent"}]}}
    made = kube_manifests.contained(record, KUBE)
    assert made["metadata"]["labels"][LABEL_MADE_BY] == kube_manifests.MADE_BY
    assert " " not in kube_manifests.MADE_BY  # a label's value
