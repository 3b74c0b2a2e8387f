import { Page } from "../components/page.js";
import type { PageProps } from "../routes.js";

// PLACEHOLDER: replaced by the page's real implementation.
export function TemplatesPage(_props: PageProps) {
  return <Page title="Templates">{null}</Page>;
}
