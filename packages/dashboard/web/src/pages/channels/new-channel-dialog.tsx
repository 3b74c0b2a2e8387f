/** "New webhook": a name, a URL and the events it receives; its signing secret is shown once. */
import type { ChannelView, WebhookEventType } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api } from "../../api/client.js";
import { useAction } from "../../api/use-api.js";
import { Dialog } from "../../components/dialog.js";
import { DialogDone, DialogForm } from "../../components/dialog-form.js";
import { Field } from "../../components/field.js";
import { OnceSecret } from "../../components/once-secret.js";

/**
 * A copy of the API's WEBHOOK_EVENT_TYPES (the bundle takes types only from @wrenn/api); the
 * `satisfies` makes a name the API does not know fail the typecheck.
 */
const EVENT_TYPES = [
  "sandbox.created",
  "sandbox.running",
  "sandbox.paused",
  "sandbox.resumed",
  "sandbox.destroyed",
  "sandbox.error",
  "sandbox.missing",
  "snapshot.created",
  "snapshot.deleted",
  "template.built",
  "template.build_failed",
  "template.deleted",
  "host.up",
  "host.down",
] as const satisfies readonly WebhookEventType[];

type CreatedChannel = ChannelView & { secret: string };

export function NewChannelDialog({
  open,
  onClose,
  onCreated,
}: {
  open: boolean;
  onClose: () => void;
  onCreated: () => void;
}) {
  const [name, setName] = useState("");
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState<ReadonlySet<WebhookEventType>>(new Set());
  const [created, setCreated] = useState<CreatedChannel | null>(null);
  const create = useAction(async () => {
    const body = { name, url, events: EVENT_TYPES.filter((e) => events.has(e)) };
    setCreated(await api<CreatedChannel>("POST", "/v1/channels", { body }));
    onCreated();
  });
  const toggle = (e: WebhookEventType, on: boolean) => {
    const next = new Set(events);
    if (on) next.add(e);
    else next.delete(e);
    setEvents(next);
  };
  const close = () => {
    setName("");
    setUrl("");
    setEvents(new Set());
    setCreated(null);
    create.clear();
    onClose();
  };
  return (
    <Dialog title="New webhook" open={open} onClose={close}>
      {created ? (
        <DialogDone onDone={close}>
          <p>
            Deliveries to <code>{created.url}</code> carry an HMAC-SHA256 signature made with this secret.
          </p>
          <OnceSecret label="Signing secret" value={created.secret} />
        </DialogDone>
      ) : (
        <DialogForm action={create} submitLabel="Create" onCancel={close}>
          <Field label="Name">
            <input
              type="text"
              required
              maxLength={128}
              value={name}
              onInput={(e) => setName(e.currentTarget.value)}
            />
          </Field>
          <Field label="URL">
            <input
              type="url"
              required
              placeholder="https://example.com/hooks/wrenn"
              value={url}
              onInput={(e) => setUrl(e.currentTarget.value)}
            />
          </Field>
          <fieldset class="checks">
            <legend>Events (none checked: all of them)</legend>
            {EVENT_TYPES.map((e) => (
              <label key={e} class="check">
                <input
                  type="checkbox"
                  checked={events.has(e)}
                  onChange={(ev) => toggle(e, ev.currentTarget.checked)}
                />{" "}
                <code>{e}</code>
              </label>
            ))}
          </fieldset>
        </DialogForm>
      )}
    </Dialog>
  );
}
