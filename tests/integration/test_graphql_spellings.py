"""GraphQL ids spelt so the proxy misjudged them, on the real appliance and a fake GitHub:
variables sent as JSON text, an id padded past what is asked about, an id of the older form
without its padding.

GitHub's server (graphql-ruby's usual controller) reads ``"variables"`` given as a JSON
string as it reads an object. The proxy read only an object: the ids in the text were never
asked about, so the agent closed the person's issue and retargeted its own pull request by
spelling its variables as a string. Sessions are real containers of the agent image; what
the agent sends runs in them as uid 1000, through the proxy, to :class:`FakeGitHub`.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from tests.integration import test_pull_requests as pulls
from tests.support import agent_app
from tests.support.agent_app import create
from tests.support.appliance import Appliance
from tests.support.fake_github import FakeGitHub

SLUG = "octo/app"
# The appliance behind the proxy and the repository on the fake GitHub, as there.
app, origin = pulls.app, pulls.origin


def as_agent(app: Appliance, s: dict[str, Any], doc: dict[str, Any]) -> tuple[str, str]:
    """The agent's GraphQL call from inside its container: (status, answer)."""
    _, out = agent_app.in_container(app, s, (
        "curl -s -w '\\n%{http_code}' -H 'Authorization: Bearer x' "
        f"-H 'content-type: application/json' -X POST -d '{json.dumps(doc)}' "
        "https://api.github.com/graphql"), ok=False)
    body, _, code = out.strip().rpartition("\n")
    return code, body


def test_variables_sent_as_json_text_reach_none_of_the_persons_things(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """The agent closed the person's issue and moved its own pull request's base with
    ``"variables": "{\\"id\\": ...}"``: the proxy asked GitHub about the whole text as one
    string, which names nothing. Variables that are not a JSON object are now refused,
    saying how to send them; the same write with an object is judged (the control)."""
    s = pulls.with_pull(app, origin, "texter", "x")  # #1, from clauderon/texter
    issue = github.add_issue(SLUG, "The person's bug")
    close = "mutation($id: ID!) { closeIssue(input: {issueId: $id}) { clientMutationId } }"
    retarget = ("mutation($in: UpdatePullRequestInput!) { updatePullRequest(input: $in) "
                "{ clientMutationId } }")
    sent = [{"query": close, "variables": json.dumps({"id": f"I_{issue['number']}"})},
            {"query": retarget, "variables": json.dumps(
                {"in": {"pullRequestId": "PR_1", "baseRefName": "release"}})}]
    answers = [as_agent(app, s, doc) for doc in sent]
    assert [code for code, _ in answers] == ["403", "403"], (
        f"variables as JSON text went through: {answers}")
    assert all("a JSON object" in why for _, why in answers), answers
    assert issue["state"] == "open"
    assert not [x for x in github.seen if x.path == "/graphql" and b"mutation" in x.body]
    # The control: an object's ids are asked about (the person's issue is refused as theirs),
    # and a comment on the issue goes.
    code, why = as_agent(app, s, {"query": close, "variables": {"id": f"I_{issue['number']}"}})
    assert code == "403" and "the person's" in why, why
    comment = ('mutation($id: ID!) { addComment(input: {subjectId: $id, body: "hi"}) '
               "{ clientMutationId } }")
    code, why = as_agent(app, s, {"query": comment, "variables": json.dumps(
        {"id": f"I_{issue['number']}"})})
    assert code == "403", why
    code, why = as_agent(app, s, {"query": comment, "variables": {"id": f"I_{issue['number']}"}})
    assert code == "200", why


def test_an_id_too_long_to_be_asked_about_is_not_written_to(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """Only strings up to 256 characters are asked about (a node id is far shorter; a body
    is not one). The agent wrote the person's pull request's id padded past that length
    (here leading zeros, which this fake reads away as a lenient decoder reads past what it
    does not need): nothing was asked, and the person's pull request was closed. A string
    where an id goes that is too long to be asked about is now refused."""
    s = create(app, origin, "padder")
    theirs = github.add_pull(SLUG, "persons-work")
    padded = "PR_" + "0" * 300 + str(theirs["number"])
    close = ('mutation { closePullRequest(input: {pullRequestId: "%s"}) '
             "{ clientMutationId } }")
    code, why = as_agent(app, s, {"query": close % padded})
    assert code == "403", f"the person's pull request was closed: {code} {why}"
    assert theirs["state"] == "open"
    assert "over 256 characters" in why, why
    # The control: the same id, unpadded, is asked about and refused as the person's.
    code, why = as_agent(app, s, {"query": close % f"PR_{theirs['number']}"})
    assert code == "403" and "persons-work" in why, why
    assert theirs["state"] == "open"


def test_a_guessed_id_of_the_older_form_without_its_padding_is_not_changed(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """A string that names nothing yet, where an id goes, is refused when it is written as
    a node id (ids are handed out in order: the person's next comment may get it between
    GitHub's answer and the write). An id of the older form (base64 of
    ``012:IssueComment<n>``) was taken for one only with its ``=`` padding, which GitHub's
    server reads without: the agent deleted the person's comment made just after the check
    by the guessed id, unpadded."""
    s = pulls.with_pull(app, origin, "unpadded", "x")  # #1, from clauderon/unpadded
    nxt = len(github.comments) + 1
    guessed = base64.b64encode(f"012:IssueComment{nxt}".encode()).decode().rstrip("=")
    assert not guessed.endswith("=") and len(guessed) % 4
    github.then.append(lambda: github.add_comment(SLUG, 1, "the person's review"))
    code, why = as_agent(app, s, {
        "query": "mutation($id: ID!) { deleteIssueComment(input: {id: $id}) "
                 "{ clientMutationId } }", "variables": {"id": guessed}})
    assert code == "403", f"the person's comment made after the check was deleted: {code}"
    assert github.comments[nxt]["body"] == "the person's review", why
    assert "names nothing yet" in why, why


def test_a_guessed_id_with_its_kind_in_lower_case_is_not_changed(
        app: Appliance, origin: Path, github: FakeGitHub) -> None:
    """As the older form unpadded: an id of the new form whose kind is written in lower
    case (``ic_…``) was not taken for a node id, so when GitHub said it named nothing yet
    the write went on, and a decoder that reads the kind whatever its case deleted the
    person's comment made just after the check. It is now taken for one and refused."""
    s = pulls.with_pull(app, origin, "lowered", "x")  # #1, from clauderon/lowered
    nxt = len(github.comments) + 1
    github.then.append(lambda: github.add_comment(SLUG, 1, "the person's review"))
    code, why = as_agent(app, s, {
        "query": "mutation($id: ID!) { deleteIssueComment(input: {id: $id}) "
                 "{ clientMutationId } }", "variables": {"id": f"ic_{nxt}"}})
    assert code == "403", f"the person's comment made after the check was deleted: {code}"
    assert github.comments[nxt]["body"] == "the person's review", why
    assert "names nothing yet" in why, why
