export { FUSED_DEPTH, Pipeline, STAGES, type PipelineOptions, type PipelineReport, type PipelineSession, type PostprocessOptions, type RuntimeSettings, type StageName } from './pipeline.js';
export { StageQueue, type QueueMode } from './queue.js';
export { DropCounter, LatencyRing, RING_SIZE, type DropCounts, type DropStage, type Percentiles } from './stats.js';
export { createSource, openSession, v4l2Availability, parseProviders, type SessionSetup, type SessionSetupOptions } from './setup.js';
