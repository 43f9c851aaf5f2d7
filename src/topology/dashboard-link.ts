// The dashboard (src/dashboard) runs inside the supervisor's process, on the topology's admin address.
import type { Logger } from '../core/log.js';
import type { ControlPlane } from '../dashboard/control-plane.js';
import { startDashboard } from '../dashboard/index.js';

export interface RunningDashboard {
  url: string;
  close(): Promise<void>;
}

export function startDashboardFor(
  listen: string,
  token: string | undefined,
  control: ControlPlane,
  logger: Logger,
): Promise<RunningDashboard> {
  return startDashboard({ listen, token, control, logger });
}
