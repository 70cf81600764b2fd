// Status and agent-status badges: colour plus words (never colour alone).
import type { AgentStatus, Phase } from "../api";

const PHASE: Record<Phase, string> = {
  creating: "Creating", running: "Running", stopped: "Stopped", archived: "Archived",
  deleting: "Deleting", failed: "Failed", completed: "Completed",
};

const AGENT: Record<AgentStatus, string> = {
  unknown: "", working: "Working", waiting_approval: "Needs approval",
  waiting_input: "Waiting for you", idle: "Idle",
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

export function AgentBadge({ status }: { status: AgentStatus }) {
  const label = AGENT[status];
  if (!label) return null;
  return <span class={`badge agent-${status}`} data-testid="agent-status">
    <i class="dot" aria-hidden="true" />{label}
  </span>;
}
