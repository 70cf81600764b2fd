"""Why a container (a pod) is made again, in words true of how it came to lack what it lacks
(``base.remade_because``): the label written at create says which version made it."""

from __future__ import annotations

import pytest

from appliance.backends import kubernetes_lockdown as kube_lockdown
from appliance.backends import kubernetes_manifests as kube_manifests
from appliance.backends.base import LABEL_MADE_BY
from appliance.backends.docker_spec import MADE_BY, made_by, remade_because
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
    assert remade_because(missing, made, this=THIS) == said


@pytest.mark.parametrize(("labels", "made"), [
    (None, None),
    ({}, None),
    ({LABEL_MADE_BY: ""}, None),
    ({LABEL_MADE_BY: MADE_BY}, MADE_BY),
])
def test_the_label_says_which_version_made_it(labels: dict[str, str] | None,
                                              made: str | None) -> None:
    assert made_by({"Config": {"Labels": labels}}) == made


def test_this_version_names_itself() -> None:
    assert remade_because(["x"], MADE_BY).startswith("changed after this version made it")


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
    assert kube_lockdown.remade_because(["no API token"], kube_lockdown.made_by(pod)) == said


def test_a_pod_made_or_remade_is_labelled_with_this_version() -> None:
    record = {"metadata": {"labels": {LABEL_MADE_BY: "0.1.0-ba9876543210"}},
              "spec": {"containers": [{"name": "agent"}]}}
    made = kube_manifests.contained(record, KUBE)
    assert kube_lockdown.made_by(made) == kube_manifests.MADE_BY
    assert " " not in kube_manifests.MADE_BY  # a label's value
