// Status and agent-status badges: colour plus words (never colour alone).
import type { AgentStatus, Phase } from "../api";

const PHASE: Record<Phase, string> = {
  creating: "Creating", running: "Running", stopped: "Stopped", archived: "Archived",
  deleting: "Deleting", failed: "Failed",
};

const AGENT: Record<AgentStatus, string> = {
  unknown: "", working: "Working", waiting_approval: "Needs approval",
  waiting_input: "Waiting for you", idle: "Idle",
};

export function PhaseBadge({ phase }: { phase: Phase }) {
  return <span class={`badge phase-${phase}`} data-testid="phase">
    <i class="dot" aria-hidden="true" />{PHASE[phase] ?? phase}
  </span>;
}

export function AgentBadge({ status }: { status: AgentStatus }) {
  const label = AGENT[status];
  if (!label) return null;
  return <span class={`badge agent-${status}`} data-testid="agent-status">
    <i class="dot" aria-hidden="true" />{label}
  </span>;
}

export function waitingForMe(status: AgentStatus): boolean {
  return status === "waiting_approval" || status === "waiting_input";
}
