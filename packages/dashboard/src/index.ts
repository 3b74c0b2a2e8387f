import { fileURLToPath } from "node:url";

/** Where `npm run build` puts the dashboard's files (index.html, assets/, and .br/.gz beside them). */
export const DASHBOARD_DIST_DIR = fileURLToPath(new URL("../dist/", import.meta.url));
