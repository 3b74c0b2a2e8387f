/** What a sandbox is: state, template, host, sizes, times, metadata and its network policy. */
import type { SandboxNetworkView, SandboxView } from "@wrenn/api";
import { StateBadge } from "../../components/state-badge.js";
import { formatBytes, formatRelative, formatTime } from "../../format.js";

const MIB = 1024 * 1024;

function When({ iso }: { iso: string | null }) {
  if (!iso) return <>–</>;
  return (
    <time dateTime={iso} title={formatTime(iso)}>
      {formatTime(iso)} ({formatRelative(iso)})
    </time>
  );
}

/** One line per policy part, e.g. "internet: allowed · allow 2 · deny 1 · public traffic: token". */
export function networkSummary(n: SandboxNetworkView): string {
  const parts = [`internet: ${n.allow_internet_access ? "allowed" : "denied"}`];
  if (n.allow_out.length) parts.push(`allow ${n.allow_out.join(", ")}`);
  if (n.deny_out.length) parts.push(`deny ${n.deny_out.join(", ")}`);
  parts.push(`public traffic: ${n.allow_public_traffic ? "open" : "needs the traffic token"}`);
  if (n.mask_request_host) parts.push(`Host header ${n.mask_request_host}`);
  return parts.join(" · ");
}

export function SandboxFacts({ sandbox: s }: { sandbox: SandboxView }) {
  const metadata = Object.entries(s.metadata);
  return (
    <dl class="facts">
      <dt>State</dt>
      <dd>
        <StateBadge state={s.state} />
        {s.paused_without_memory && " (disk only: a resume cold-boots)"}
      </dd>
      {s.error && (
        <>
          <dt>Error</dt>
          <dd>{s.error}</dd>
        </>
      )}
      <dt>Template</dt>
      <dd>{s.template}</dd>
      <dt>Host</dt>
      <dd class="mono">{s.host_id ?? "–"}</dd>
      <dt>Size</dt>
      <dd>
        {s.vcpus} vCPU{s.vcpus === 1 ? "" : "s"} · {formatBytes(s.memory_mb * MIB)} memory ·{" "}
        {formatBytes(s.disk_mb * MIB)} disk
      </dd>
      <dt>Created</dt>
      <dd>
        <When iso={s.created_at} />
      </dd>
      <dt>Expires</dt>
      <dd>
        <When iso={s.expires_at} />
      </dd>
      <dt>Timeout</dt>
      <dd>
        {s.timeout_sec} s idle, then {s.on_timeout === "pause" ? "pause" : "destroy"}
        {s.auto_resume && " (resumes on the first proxied request)"}
      </dd>
      <dt>Metadata</dt>
      <dd>
        {metadata.length === 0
          ? "–"
          : metadata.map(([k, v]) => (
              <code key={k} class="meta-pair">
                {k}={v}{" "}
              </code>
            ))}
      </dd>
      <dt>Network</dt>
      <dd>{networkSummary(s.network)}</dd>
    </dl>
  );
}
