import { Page } from "../components/page.js";
import { href } from "../router.js";

export function NotFoundPage({ path }: { path: string }) {
  return (
    <Page title="Not found">
      <p>
        Nothing lives at <code>{path}</code>. Go to <a href={href("/sandboxes")}>Sandboxes</a>.
      </p>
    </Page>
  );
}
