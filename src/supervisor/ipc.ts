/**
 * The typed messages between the supervisor and its worker process. Defined once, with their
 * validators, in src/schemas/ipc.ts (TypeBox; published as docs/schemas/ipc-*.json).
 */
export {
  isSupervisorMessage,
  isWorkerMessage,
  supervisorMessage,
  workerMessage,
  type PreviewMessage,
  type StartupReport,
  type SupervisorMessage,
  type WorkerEvent,
  type WorkerMessage,
  type WorkerStatsMessage,
} from '../schemas/ipc.js';
