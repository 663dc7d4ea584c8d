import { ChildProcess, spawn } from "node:child_process";
import { Browser, BrowserContext, Page, expect } from "@playwright/test";

/** A room name nobody else uses, so tests never see each other's messages. */
export function uniqueRoom(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`.slice(0, 32);
}

/** Waits until the Wasm app has taken over the server-rendered page. */
export async function hydrated(page: Page): Promise<void> {
  await expect(page.locator("html")).toHaveAttribute("data-hydrated", "true");
}

export interface Person {
  context: BrowserContext;
  page: Page;
}

/** A new browser context (a separate person) that joins `room` as `name` through the home page
 * (of the server at `origin`, default the main e2e server). */
export async function joinThroughHome(browser: Browser, name: string, room: string, origin = ""): Promise<Person> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await joinFrom(page, name, room, origin);
  return { context, page };
}

/** On `page`, joins `room` as `name` through the home page (of the server at `origin`). */
export async function joinFrom(page: Page, name: string, room: string, origin = ""): Promise<void> {
  await page.goto(`${origin}/`);
  await hydrated(page);
  await page.getByLabel("Your name").fill(name);
  await page.getByLabel("Room", { exact: true }).fill(room);
  await page.getByRole("button", { name: "Join room" }).click();
  await expect(page).toHaveURL(new RegExp(`/r/${room}$`));
  await expect(page.getByRole("status").first()).toHaveText(/Connected/);
}

/** Types a message into the composer and presses Enter. */
export async function say(page: Page, text: string): Promise<void> {
  const box = page.getByLabel("Message", { exact: true });
  await box.fill(text);
  await box.press("Enter");
}

/** The chat message list items that contain `text`. */
export function messageWith(page: Page, text: string) {
  return page.locator("li.msg:not(.pending)", { hasText: text });
}

/** Starts a program and resolves once `ready` answers, killing it when the test ends. */
export async function start(command: string, args: string[], env: Record<string, string>, ready: () => Promise<boolean>): Promise<ChildProcess> {
  const child = spawn(command, args, { cwd: "..", env: { ...process.env, ...env }, stdio: "ignore" });
  for (let i = 0; i < 200; i++) {
    if (await ready()) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error(`${command} did not start`);
}

export const answers = (url: string) => async () => {
  try {
    return (await fetch(url)).ok;
  } catch {
    return false;
  }
};

/** Posts `count` messages `${prefix} 1` … to `room` straight over a WebSocket from `page` (faster
 * than typing them), as the guest `Bulk`, and waits for every acknowledgement. */
export async function postMany(page: Page, room: string, count: number, prefix: string): Promise<void> {
  await page.evaluate(
    async ({ room, count, prefix }) => {
      const ws = new WebSocket(`ws://${location.host}/api/rooms/${room}/ws`);
      await new Promise((ok) => (ws.onopen = ok));
      ws.send(JSON.stringify({ type: "join", name: "Bulk" }));
      let acked = 0;
      const done = new Promise<void>((ok) => {
        ws.onmessage = (e) => {
          if (JSON.parse(e.data).type === "ack" && ++acked === count) ok();
        };
      });
      for (let i = 1; i <= count; i++) ws.send(JSON.stringify({ type: "send", client_id: `${prefix}-${i}`, text: `${prefix} ${i}` }));
      await done;
      ws.close();
    },
    { room, count, prefix },
  );
}
