export * from './topics.js';
export * from './schemas.js';
export * from './queue/index.js';
export { CommandDispatcher, type CommandHandler, type DispatcherOptions } from './commands.js';
export { SeqCounter } from './seq.js';
export { CpuMeter, readTemperatureC } from './system.js';
export {
  FleetLink,
  type FleetLinkEvents,
  type FleetLinkOptions,
  type LinkState,
  type LinkStats,
  type PipelineStats,
  type Timers,
  type TlsFiles,
} from './publisher.js';
