import { defineConfig } from "@playwright/test";

/** The e2e server's port: not 3000, so a running `cargo leptos watch` does not get in the way. */
export const PORT = Number(process.env.PALAVER_E2E_PORT ?? 3100);
/** A second server with a strict per-IP rate limit, for the test of what a limited person sees. */
export const STRICT_PORT = PORT + 1;
/** Two nodes sharing one Redis (the scale-out engine), for people on different nodes. */
export const NODE_PORTS = [PORT + 2, PORT + 3];
/** A server where only signed-in people chat (`--auth required`), tokens expiring to the second. */
export const AUTH_PORT = PORT + 4;
/** The HS256 secret of the sign-in server (tests sign tokens with `server token`). */
export const AUTH_SECRET = "e2e-sign-in-secret-0123456789-abcdefghij";
/** The Redis those nodes share (the one `scripts/setup.sh --e2e` makes sure is running). */
export const REDIS_URL = process.env.PALAVER_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: true,
  forbidOnly: !!process.env.CI,
  retries: 0,
  workers: process.env.CI ? 1 : 2,
  reporter: [["list"]],
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    trace: "retain-on-failure",
    launchOptions: {
      // Debian's Chromium: Playwright cannot download its own browser on this kind of machine.
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    },
  },
  // The server cargo-leptos built (scripts/test.sh runs `cargo leptos build` first), run from the
  // repository root so it finds target/site.
  webServer: [
    {
      command: "target/debug/server",
      cwd: "..",
      url: `http://127.0.0.1:${PORT}/`,
      // Every browser here comes from 127.0.0.1, one test posts 230 messages at once and another
      // fills a room with 150 connections: lift the per-IP limits, which the Rust tests and the
      // strict server below cover.
      env: {
        PALAVER_BIND: `127.0.0.1:${PORT}`,
        PALAVER_DATA_DIR: "target/e2e-data",
        PALAVER_RATE_LIMIT_BURST: "100000",
        PALAVER_JOIN_RATE_LIMIT_BURST: "100000",
        PALAVER_HTTP_RATE_LIMIT_BURST: "100000",
        PALAVER_HISTORY_RATE_LIMIT_BURST: "10000000",
        PALAVER_MAX_CONNECTIONS_PER_IP: "1000",
        RUST_LOG: "warn",
      },
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "pipe",
      stderr: "pipe",
    },
    {
      command: "target/debug/server",
      cwd: "..",
      url: `http://127.0.0.1:${STRICT_PORT}/`,
      // A burst of 3, then one message every 2 s.
      env: {
        PALAVER_BIND: `127.0.0.1:${STRICT_PORT}`,
        PALAVER_DATA_DIR: "target/e2e-strict-data",
        PALAVER_RATE_LIMIT_BURST: "3",
        PALAVER_RATE_LIMIT_INTERVAL_MS: "2000",
        PALAVER_JOIN_RATE_LIMIT_BURST: "100000",
        PALAVER_HTTP_RATE_LIMIT_BURST: "100000",
        PALAVER_HISTORY_RATE_LIMIT_BURST: "10000000",
        RUST_LOG: "warn",
      },
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "pipe",
      stderr: "pipe",
    },
    {
      command: "target/debug/server",
      cwd: "..",
      url: `http://127.0.0.1:${AUTH_PORT}/`,
      env: {
        PALAVER_BIND: `127.0.0.1:${AUTH_PORT}`,
        PALAVER_DATA_DIR: "target/e2e-auth-data",
        PALAVER_AUTH: "required",
        PALAVER_AUTH_SECRET: AUTH_SECRET,
        PALAVER_AUTH_LEEWAY_SECS: "0",
        PALAVER_RATE_LIMIT_BURST: "100000",
        PALAVER_JOIN_RATE_LIMIT_BURST: "100000",
        PALAVER_HTTP_RATE_LIMIT_BURST: "100000",
        PALAVER_HISTORY_RATE_LIMIT_BURST: "10000000",
        RUST_LOG: "warn",
      },
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "pipe",
      stderr: "pipe",
    },
    ...NODE_PORTS.map((port, i) => ({
      command: "target/debug/server",
      cwd: "..",
      url: `http://127.0.0.1:${port}/`,
      env: {
        PALAVER_BIND: `127.0.0.1:${port}`,
        PALAVER_DATA_DIR: `target/e2e-node-${i}`,
        PALAVER_ENGINE: REDIS_URL,
        // Guests chat as everywhere; moderators sign in with tokens of this secret.
        PALAVER_AUTH: "optional",
        PALAVER_AUTH_SECRET: AUTH_SECRET,
        PALAVER_RATE_LIMIT_BURST: "100000",
        PALAVER_JOIN_RATE_LIMIT_BURST: "100000",
        PALAVER_HTTP_RATE_LIMIT_BURST: "100000",
        PALAVER_HISTORY_RATE_LIMIT_BURST: "10000000",
        RUST_LOG: "warn",
      },
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "pipe" as const,
      stderr: "pipe" as const,
    })),
  ],
});
