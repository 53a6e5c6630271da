// process-on-spawn 1.x ships no types; what child-env-hook.ts uses of it.
declare module 'process-on-spawn' {
  interface SpawnOptions {
    env: NodeJS.ProcessEnv;
    readonly cwd: string;
    readonly execPath: string;
    readonly args: readonly string[];
  }
  const processOnSpawn: {
    addListener(listener: (options: SpawnOptions) => void): void;
    removeListener(listener: (options: SpawnOptions) => void): void;
  };
  export default processOnSpawn;
}
