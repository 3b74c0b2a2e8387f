/** Every signed-in page and the path it answers. */
import type { FunctionComponent } from "preact";
import { ApiKeysPage } from "./pages/api-keys.js";
import { AuditPage } from "./pages/audit.js";
import { BuildDetailPage } from "./pages/build-detail.js";
import { ChannelDetailPage } from "./pages/channel-detail.js";
import { ChannelsPage } from "./pages/channels.js";
import { HostsPage } from "./pages/hosts.js";
import { MembersPage } from "./pages/members.js";
import { SandboxDetailPage } from "./pages/sandbox-detail.js";
import { SandboxesPage } from "./pages/sandboxes.js";
import { SnapshotsPage } from "./pages/snapshots.js";
import { TemplateDetailPage } from "./pages/template-detail.js";
import { TemplatesPage } from "./pages/templates.js";
import { UsagePage } from "./pages/usage.js";

export interface PageProps {
  params: Record<string, string>;
  query: URLSearchParams;
}

export interface RouteDef {
  pattern: string;
  page: FunctionComponent<PageProps>;
}

export const ROUTES: readonly RouteDef[] = [
  { pattern: "/sandboxes", page: SandboxesPage },
  { pattern: "/sandboxes/:id", page: SandboxDetailPage },
  { pattern: "/templates", page: TemplatesPage },
  { pattern: "/templates/:name", page: TemplateDetailPage },
  { pattern: "/builds/:id", page: BuildDetailPage },
  { pattern: "/snapshots", page: SnapshotsPage },
  { pattern: "/keys", page: ApiKeysPage },
  { pattern: "/members", page: MembersPage },
  { pattern: "/audit", page: AuditPage },
  { pattern: "/channels", page: ChannelsPage },
  { pattern: "/channels/:id", page: ChannelDetailPage },
  { pattern: "/usage", page: UsagePage },
  { pattern: "/hosts", page: HostsPage },
];

export interface NavItem {
  path: string;
  label: string;
  /** Only for the platform's admin team. */
  adminOnly?: boolean;
}

export const NAV: readonly NavItem[] = [
  { path: "/sandboxes", label: "Sandboxes" },
  { path: "/templates", label: "Templates" },
  { path: "/snapshots", label: "Snapshots" },
  { path: "/usage", label: "Usage" },
  { path: "/keys", label: "API keys" },
  { path: "/members", label: "Members" },
  { path: "/channels", label: "Webhooks" },
  { path: "/audit", label: "Audit log" },
  { path: "/hosts", label: "Hosts", adminOnly: true },
];
