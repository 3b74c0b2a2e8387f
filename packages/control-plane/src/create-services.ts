import { SessionStore } from "./auth/sessions.js";
import { SigninThrottle } from "./auth/signin-throttle.js";
import { AccountsService } from "./services/accounts-service.js";
import { ApiKeysService } from "./services/api-keys-service.js";
import { AuditService } from "./services/audit-service.js";
import { ChannelsService } from "./services/channels-service.js";
import { HostsService } from "./services/hosts-service.js";
import { InvitationsService } from "./services/invitations-service.js";
import { MembersService } from "./services/members-service.js";
import { MetricsService } from "./services/metrics-service.js";
import { SandboxesService } from "./services/sandboxes-service.js";
import type { ServiceDeps } from "./services/service-deps.js";
import { SnapshotsService } from "./services/snapshots-service.js";
import { TeamsService } from "./services/teams-service.js";
import { VolumesService } from "./services/volumes-service.js";
import { TemplateBuilds } from "./templates/template-builds.js";
import { TemplateFiles } from "./templates/template-files.js";
import { TemplateGc } from "./templates/template-gc.js";
import { TemplatesService } from "./templates/templates-service.js";

export interface Services {
  teams: TeamsService;
  /** Users, passwords and browser sessions. */
  accounts: AccountsService;
  members: MembersService;
  invitations: InvitationsService;
  apiKeys: ApiKeysService;
  hosts: HostsService;
  sandboxes: SandboxesService;
  /** Metrics history (written by the metrics sampler) and usage. */
  metrics: MetricsService;
  snapshots: SnapshotsService;
  channels: ChannelsService;
  audit: AuditService;
  volumes: VolumesService;
  templates: TemplatesService;
  /** Template builds in this process (queue, recovery at start, replication). */
  templateBuilds: TemplateBuilds;
  templateGc: TemplateGc;
}

export function createServices(deps: ServiceDeps): Services {
  const sandboxes = new SandboxesService(deps);
  const files = new TemplateFiles(deps.db, deps.config.templateFilesDir, deps.config.templateFileMaxBytes);
  const templateGc = new TemplateGc(deps, files);
  const templateBuilds = new TemplateBuilds(deps, sandboxes, files, templateGc);
  const { config, now } = deps;
  const sessions = new SessionStore(deps.db, config.sessionTtlSec * 1000, now);
  const throttle = new SigninThrottle(
    deps.db,
    {
      maxFailuresPerEmail: config.signinMaxFailuresPerEmail,
      maxFailuresPerIp: config.signinMaxFailuresPerIp,
      windowMs: config.signinWindowSec * 1000,
    },
    now,
  );
  return {
    teams: new TeamsService(deps),
    accounts: new AccountsService(deps, sessions, throttle),
    members: new MembersService(deps),
    invitations: new InvitationsService(deps),
    apiKeys: new ApiKeysService(deps),
    hosts: new HostsService(deps),
    sandboxes,
    metrics: new MetricsService(deps, sandboxes),
    templates: new TemplatesService(deps, templateBuilds, files, templateGc),
    templateBuilds,
    templateGc,
    snapshots: new SnapshotsService(deps),
    channels: new ChannelsService(deps),
    audit: new AuditService(deps),
    volumes: new VolumesService(deps),
  };
}
