/** "New build": a template name and its build spec as JSON (TemplateBuildBody without the name). */
import type { TemplateBuildBody } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api } from "../../api/client.js";
import { useAction } from "../../api/use-api.js";
import { Dialog } from "../../components/dialog.js";
import { DialogForm } from "../../components/dialog-form.js";
import { Field } from "../../components/field.js";
import { navigate } from "../../router.js";

/** A spec that builds on the stock image in seconds: one step, nothing to upload. */
export function exampleSpec(image = "base"): string {
  const spec = {
    from: { image },
    steps: [{ type: "run", command: "mkdir -p ~/app && echo 'hello from a template' > ~/app/hello.txt" }],
  };
  return JSON.stringify(spec, null, 2);
}

interface BuildStarted {
  template: { id: string; name: string };
  build: { id: string };
}

function parseSpec(text: string): Record<string, unknown> {
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch (err) {
    throw new Error(`The build spec is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    throw new Error('The build spec must be a JSON object such as {"from": {"image": "base"}, "steps": []}.');
  }
  return spec as Record<string, unknown>;
}

export function NewBuildDialog({
  open,
  onClose,
  initialName = "",
  fromImage = "base",
}: {
  open: boolean;
  onClose: () => void;
  initialName?: string;
  fromImage?: string;
}) {
  const [name, setName] = useState(initialName);
  const [spec, setSpec] = useState(() => exampleSpec(fromImage));
  const start = useAction(async () => {
    const body = { ...parseSpec(spec), name } as TemplateBuildBody;
    const started = await api<BuildStarted>("POST", "/v1/templates", { body });
    navigate(`/builds/${started.build.id}`);
  });
  const close = () => {
    start.clear();
    onClose();
  };
  return (
    <Dialog title="New build" open={open} onClose={close}>
      <DialogForm action={start} submitLabel="Start build" busyLabel="Starting…" onCancel={close}>
        <Field label="Name">
          <input
            type="text"
            required
            maxLength={64}
            value={name}
            onInput={(e) => setName(e.currentTarget.value)}
          />
        </Field>
        <Field label="Build spec (JSON)">
          <textarea
            rows={12}
            spellcheck={false}
            value={spec}
            onInput={(e) => setSpec(e.currentTarget.value)}
          />
        </Field>
        <p class="field-hint">
          <code>from</code> is an image or another template; steps are <code>run</code>, <code>env</code>,{" "}
          <code>workdir</code>, <code>user</code> (and <code>copy</code>, whose archive the CLI uploads);
          optional <code>start_cmd</code>, <code>ready_cmd</code>, <code>tags</code>, <code>vcpus</code>,{" "}
          <code>memory_mb</code>.
        </p>
      </DialogForm>
    </Dialog>
  );
}
