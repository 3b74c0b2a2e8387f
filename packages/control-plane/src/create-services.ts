import { ApiKeysService } from "./services/api-keys-service.js";
import { AuditService } from "./services/audit-service.js";
import { ChannelsService } from "./services/channels-service.js";
import { HostsService } from "./services/hosts-service.js";
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
  return {
    teams: new TeamsService(deps),
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
