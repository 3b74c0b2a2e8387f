/**
 * The mutable per-sandbox settings that `POST /init` sets and every service reads:
 * env vars for new processes, the access token, default user and working directory.
 */
export interface EnvdState {
  /** The image's environment (read once at start), under envVars. */
  imageEnv: Record<string, string>;
  envVars: Record<string, string>;
  /** When set, every request must carry it (X-Access-Token) or a valid signature. */
  accessToken: string | undefined;
  defaultUser: string;
  defaultWorkdir: string | undefined;
  /** Epoch ms of the newest /init applied; older ones are ignored. */
  lastInitTimestampMs: number;
}

export function createEnvdState(init: {
  defaultUser: string;
  defaultWorkdir?: string | undefined;
  imageEnv?: Record<string, string>;
}): EnvdState {
  return {
    imageEnv: init.imageEnv ?? {},
    envVars: {},
    accessToken: undefined,
    defaultUser: init.defaultUser,
    defaultWorkdir: init.defaultWorkdir,
    lastInitTimestampMs: 0,
  };
}
