import { ChildProcess, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { expect, test } from "@playwright/test";
import { PORT } from "../playwright.config";
import { answers, hydrated, joinThroughHome, messageWith, say, uniqueRoom } from "./helpers";

/** The self-contained build `scripts/test.sh` makes (the site inside the binary). */
const BINARY = resolve(__dirname, "../../target/alone/server");
const ALONE_PORT = PORT + 6;
const origin = `http://127.0.0.1:${ALONE_PORT}`;

let server: ChildProcess | undefined;
let log = "";
let dir = "";

test.beforeAll(async () => {
  expect(existsSync(BINARY), `${BINARY} is missing: scripts/test.sh builds it`).toBe(true);
  // An empty directory with nothing but the binary, and an environment that names no site.
  dir = mkdtempSync(join(tmpdir(), "palaver-alone-"));
  copyFileSync(BINARY, join(dir, "server"));
  server = spawn("./server", [], {
    cwd: dir,
    env: {
      PATH: "/usr/bin:/bin",
      PALAVER_BIND: `127.0.0.1:${ALONE_PORT}`,
      PALAVER_RATE_LIMIT_BURST: "100000",
      PALAVER_JOIN_RATE_LIMIT_BURST: "100000",
      PALAVER_HTTP_RATE_LIMIT_BURST: "100000",
      RUST_LOG: "info",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  server.stdout?.on("data", (d) => (log += d));
  server.stderr?.on("data", (d) => (log += d));
  const ready = answers(`${origin}/healthz`);
  for (let i = 0; i < 200 && !(await ready()); i++) await new Promise((r) => setTimeout(r, 100));
  expect(await ready(), `the copied binary did not start:\n${log}`).toBe(true);
});

test.afterAll(() => {
  server?.kill("SIGTERM");
});

test("the server binary copied alone into an empty directory serves a working chat", async ({ browser }) => {
  expect(log).toContain("serving the site's files");
  expect(log).toContain("the binary");
  const room = uniqueRoom("alone");
  const ada = await joinThroughHome(browser, "Ada", room, origin);
  const bob = await joinThroughHome(browser, "Bob", room, origin);

  // Styled (the hashed stylesheet loaded) and hydrated (the Wasm ran).
  await hydrated(ada.page);
  const css = ada.page.locator('link[rel="stylesheet"][id="leptos"]');
  const href = await css.getAttribute("href");
  expect(href).toMatch(/^\/pkg\/palaver\.[A-Za-z0-9_-]+\.css$/);
  const rules = await ada.page.evaluate(
    () => [...document.styleSheets].filter((s) => s.href?.includes("/pkg/")).map((s) => s.cssRules.length)[0] ?? 0,
  );
  expect(rules).toBeGreaterThan(50);

  // The hashed files are cacheable for a year and typed; unknown paths get the app's 404 page.
  for (const kind of ["css", "js", "wasm"]) {
    const url = kind === "css" ? href! : await ada.page.evaluate((k) => {
      const link = [...document.querySelectorAll("link")].find((l) => l.href.endsWith(`.${k}`));
      return link ? new URL(link.href).pathname : "";
    }, kind);
    const response = await ada.page.request.get(`${origin}${url}`);
    expect(response.status(), url).toBe(200);
    expect(response.headers()["cache-control"]).toBe("public, max-age=31536000, immutable");
    expect(response.headers()["content-type"]).toContain({ css: "text/css", js: "javascript", wasm: "application/wasm" }[kind]);
  }
  const missing = await ada.page.request.get(`${origin}/pkg/nothing-here.js`);
  expect(missing.status()).toBe(404);

  await say(ada.page, "hello from a binary on its own");
  await expect(messageWith(bob.page, "hello from a binary on its own")).toHaveCount(1);
  await say(bob.page, "and back");
  await expect(messageWith(ada.page, "and back")).toHaveCount(1);

  // Nothing but the binary and its data directory was needed.
  expect(readdirSync(dir).sort()).toEqual(["data", "server"]);
  await ada.context.close();
  await bob.context.close();
});
