// Status and agent-status badges: colour plus words (never colour alone).
import type { AgentState, Phase } from "../api";

const PHASE: Record<Phase, string> = {
  creating: "Creating", running: "Running", stopped: "Stopped", archived: "Archived",
  deleting: "Deleting", failed: "Failed", completed: "Completed",
};

const AGENT: Record<AgentState, string> = {
  unknown: "", working: "Working", waiting_approval: "Needs approval",
  waiting_input: "Waiting for you", idle: "Idle", exited: "Agent exited",
  model_failing: "Model failing",
};

/** A newer appliance may send a phase this client does not know: show it as it came. */
function phaseLabel(phase: Phase): string {
  return (PHASE as Partial<Record<string, string>>)[phase] ?? phase;
}

export function PhaseBadge({ phase }: { phase: Phase }) {
  return <span class={`badge phase-${phase}`} data-testid="phase">
    <i class="dot" aria-hidden="true" />{phaseLabel(phase)}
  </span>;
}

/** The agent's state (the API's `agent_state`); with `why`, its reason as the title. */
export function AgentBadge({ state, why }: { state: AgentState; why?: string | null }) {
  const label = (AGENT as Partial<Record<string, string>>)[state] ?? state;
  if (!label) return null;
  return <span class={`badge agent-${state}`} data-testid="agent-status" title={why ?? undefined}>
    <i class="dot" aria-hidden="true" />{label}
  </span>;
}

/** Why the session's model requests fail, where its status is shown (null when they work). */
export function ModelError({ s }: { s: { agent_state: AgentState; model_error: string | null } }) {
  if (s.agent_state !== "model_failing" || !s.model_error) return null;
  return <p class="reason" data-testid="model-error">{s.model_error}</p>;
}
