"""A plan message's plan is one shape whatever agent wrote it, read from each agent's own
log lines, and bounded: the agent writes its transcript, so its plan is hostile input."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from appliance import wire
from appliance.agents import plans
from appliance.agents.logs import Kind, parse_lines
from appliance.agents.plans import MAX_STEP_CHARS, MAX_STEPS, MAX_TEXT_CHARS, Plan, Step
from appliance.sessions import Agent

P, W, C = plans.Status.PENDING, plans.Status.IN_PROGRESS, plans.Status.COMPLETED


def claude(name: str, args: Any) -> dict[str, Any]:
    return {"type": "assistant", "message": {"role": "assistant", "content": [
        {"type": "tool_use", "id": "t1", "name": name, "input": args}]}}


def codex(name: str, args: Any) -> dict[str, Any]:
    return {"type": "response_item", "payload": {
        "type": "function_call", "name": name, "call_id": "t1", "arguments": json.dumps(args)}}


def gemini(name: str, args: Any) -> dict[str, Any]:
    return {"type": "gemini", "content": "", "toolCalls": [
        {"id": "t1", "name": name, "args": args}]}


LINES = {Agent.CLAUDE: claude, Agent.CODEX: codex, Agent.GEMINI: gemini}


def plan_message(agent: Agent, name: str, args: Any) -> dict[str, Any]:
    """The message the API serves for one plan tool call, as the agent logged it."""
    line = json.dumps(LINES[agent](name, args)).encode() + b"\n"
    [message], _ = parse_lines(agent, line)
    assert message.kind is Kind.PLAN
    served = message.to_json()
    jsonschema.validate(served, wire.SCHEMAS["Message"])
    return served


def as_json(plan: Plan) -> dict[str, Any]:
    return {"text": plan.text, "more_steps": plan.more_steps,
            "steps": [{"text": s.text, "status": str(s.status)} for s in plan.steps]}


@pytest.mark.parametrize(("agent", "tool", "args", "plan"), [
    (Agent.CLAUDE, "TodoWrite", {"todos": [{"content": "a", "status": "completed"},
                                           {"content": "b", "status": "in_progress"},
                                           {"content": "c", "status": "pending"}]},
     Plan(steps=(Step("a", C), Step("b", W), Step("c", P)))),
    (Agent.CLAUDE, "ExitPlanMode", {"plan": "# Plan\n1. edit"}, Plan(text="# Plan\n1. edit")),
    (Agent.CODEX, "update_plan", {"explanation": "why", "plan": [
        {"step": "read", "status": "completed"}, {"step": "edit", "status": "pending"}]},
     Plan(text="why", steps=(Step("read", C), Step("edit", P)))),
    (Agent.CODEX, "update_plan", {"plan": [{"step": "only"}]}, Plan(steps=(Step("only", P),))),
    (Agent.GEMINI, "write_todos", {"todos": [{"description": "d", "status": "cancelled"}]},
     Plan(steps=(Step("d", P),))),
    (Agent.GEMINI, "enter_plan_mode", {"reason": "big change"}, Plan(text="big change")),
    (Agent.GEMINI, "exit_plan_mode", {"plan_path": "plans/p.md"},
     Plan(text="The plan is in plans/p.md")),
    (Agent.GEMINI, "enter_plan_mode", {}, Plan()),
])
def test_each_agents_plan_tool_reads_into_the_one_shape(
        agent: Agent, tool: str, args: Any, plan: Plan) -> None:
    assert plan_message(agent, tool, args)["plan"] == as_json(plan)


@pytest.mark.parametrize(("agent", "tool", "args", "plan"), [
    # a status outside the set, or none, is pending (it was written into a class)
    (Agent.CLAUDE, "TodoWrite", {"todos": [{"content": "x", "status": "msg user"},
                                           {"content": "y", "status": ["completed"]},
                                           {"content": "z"}]},
     Plan(steps=(Step("x", P), Step("y", P), Step("z", P)))),
    # values that should be strings and are not are empty; items that are not objects too
    (Agent.CLAUDE, "TodoWrite", {"todos": [{"content": {"a": 1}, "status": "completed"}, 7]},
     Plan(steps=(Step("", C), Step("", P)))),
    (Agent.CLAUDE, "TodoWrite", {"todos": "not a list"}, Plan()),
    (Agent.CLAUDE, "TodoWrite", ["not", "an", "object"], Plan()),
    (Agent.CLAUDE, "ExitPlanMode", {"plan": ["not", "text"]}, Plan()),
    (Agent.CODEX, "update_plan", "{torn json", Plan()),
    # another agent's key is not guessed at
    (Agent.CODEX, "update_plan", {"todos": [{"content": "x", "status": "pending"}]}, Plan()),
    (Agent.GEMINI, "write_todos", {"todos": [{"content": "x", "status": "pending"}]},
     Plan(steps=(Step("", P),))),
])
def test_a_hostile_or_foreign_plan_reads_as_nothing_it_does_not_say(
        agent: Agent, tool: str, args: Any, plan: Plan) -> None:
    assert plan_message(agent, tool, args)["plan"] == as_json(plan)


def test_a_plan_is_bounded_and_says_how_much_more_it_held() -> None:
    todos = [{"content": "s" * (MAX_STEP_CHARS + 5), "status": "pending"}] * (MAX_STEPS + 7)
    served = plan_message(Agent.CLAUDE, "TodoWrite", {"todos": todos})["plan"]
    assert len(served["steps"]) == MAX_STEPS and served["more_steps"] == 7
    assert served["steps"][0]["text"] == "s" * MAX_STEP_CHARS + "\n\n… 5 more characters not shown"
    text = plan_message(Agent.CLAUDE, "ExitPlanMode", {"plan": "p" * (MAX_TEXT_CHARS + 1)})
    assert text["plan"]["text"].endswith("p\n\n… 1 more characters not shown")
    assert len(text["plan"]["text"]) < MAX_TEXT_CHARS + 40


def test_only_a_plan_tool_makes_a_plan_and_the_others_carry_none() -> None:
    line = json.dumps(claude("Bash", {"command": "ls", "todos": []})).encode() + b"\n"
    [call], _ = parse_lines(Agent.CLAUDE, line)
    assert call.kind is Kind.TOOL_CALL and call.to_json()["plan"] is None
