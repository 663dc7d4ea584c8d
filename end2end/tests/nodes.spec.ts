import { mkdtempSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "@playwright/test";
import { NODE_PORTS } from "../playwright.config";
import { answers, joinThroughHome, messageWith, say, start, uniqueRoom } from "./helpers";

const [nodeA, nodeB] = NODE_PORTS.map((port) => `http://127.0.0.1:${port}`);

test("two people on two nodes sharing one Redis chat with each other", async ({ browser }) => {
  const room = uniqueRoom("nodes");
  const ada = await joinThroughHome(browser, "Ada", room, nodeA);
  const bob = await joinThroughHome(browser, "Bob", room, nodeB);

  // Each sees the other online, though they are on different servers.
  for (const person of [ada, bob]) {
    const roster = person.page.locator("details.roster");
    await expect(roster.locator("summary")).toHaveText("2 online");
    await roster.locator("summary").click();
    await expect(roster.getByRole("listitem")).toHaveText(["Ada", "Bob"]);
  }

  await say(ada.page, "hello from node A");
  await expect(messageWith(bob.page, "hello from node A")).toHaveCount(1);
  await say(bob.page, "hello from node B");
  await expect(messageWith(ada.page, "hello from node B")).toHaveCount(1);
  await say(ada.page, "and back again");
  await expect(messageWith(bob.page, "and back again")).toHaveCount(1);

  // The same conversation, in the same order, on both.
  const texts = (person: typeof ada) => person.page.locator("li.msg:not(.pending) .text").allTextContents();
  const expected = ["hello from node A", "hello from node B", "and back again"];
  expect(await texts(ada)).toEqual(expected);
  expect(await texts(bob)).toEqual(expected);
  await ada.page.screenshot({ path: "test-results/nodes-ada-on-a.png" });
  await bob.page.screenshot({ path: "test-results/nodes-bob-on-b.png" });

  // Bob leaves node B; Ada, on node A, sees him go.
  await bob.context.close();
  await expect(ada.page.locator("details.roster summary")).toHaveText("1 online");
  await ada.context.close();
});

test("when its Redis goes away a node says saving is paused, keeps what is typed, and sends it when Redis is back", async ({ browser }) => {
  // A node of its own on a Redis of its own, so stopping that Redis disturbs nobody else.
  const redisPort = NODE_PORTS[1] + 90;
  const serverPort = NODE_PORTS[1] + 91;
  const redisDir = mkdtempSync(join(tmpdir(), "palaver-e2e-redis-"));
  const startRedis = () =>
    start("redis-server", ["--port", `${redisPort}`, "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", redisDir], {}, async () => {
      // Ready when it answers PING (after loading its AOF).
      return new Promise((resolve) => {
        const socket = connect(redisPort, "127.0.0.1", () => socket.write("PING\r\n"));
        socket.on("data", (d: Buffer) => {
          resolve(d.toString().startsWith("+PONG"));
          socket.destroy();
        });
        socket.on("error", () => resolve(false));
      });
    });
  let redis = await startRedis();
  const server = await start(
    "target/debug/server",
    [],
    {
      PALAVER_BIND: `127.0.0.1:${serverPort}`,
      PALAVER_DATA_DIR: join(redisDir, "node"),
      PALAVER_ENGINE: `redis://127.0.0.1:${redisPort}`,
      PALAVER_RATE_LIMIT_BURST: "100000",
      RUST_LOG: "warn",
    },
    answers(`http://127.0.0.1:${serverPort}/readyz`),
  );
  try {
    const room = uniqueRoom("degraded");
    const ada = await joinThroughHome(browser, "Ada", room, `http://127.0.0.1:${serverPort}`);
    await say(ada.page, "before the outage");
    await expect(messageWith(ada.page, "before the outage")).toHaveCount(1);

    redis.kill("SIGKILL");
    const status = ada.page.getByRole("status");
    await expect(status).toHaveText(/Saving paused/);
    await expect(status).toHaveAttribute("data-state", "degraded");
    await say(ada.page, "typed during the outage");
    await expect(ada.page.locator("li.msg.pending", { hasText: "typed during the outage" })).toContainText("Waiting to send");
    await ada.page.screenshot({ path: "test-results/degraded.png" });
    // How it looks on a phone, in dark mode.
    await ada.page.setViewportSize({ width: 390, height: 760 });
    await ada.page.emulateMedia({ colorScheme: "dark" });
    await expect(status).toBeInViewport();
    await ada.page.screenshot({ path: "test-results/degraded-phone-dark.png" });

    redis = await startRedis();
    await expect(status).toHaveText(/Connected$/, { timeout: 20_000 });
    await expect(messageWith(ada.page, "typed during the outage")).toHaveCount(1, { timeout: 20_000 });
    await expect(ada.page.locator("li.msg.pending")).toHaveCount(0);
    const texts = await ada.page.locator("li.msg:not(.pending) .text").allTextContents();
    expect(texts).toEqual(["before the outage", "typed during the outage"]);
    await ada.context.close();
  } finally {
    server.kill("SIGKILL");
    redis.kill("SIGKILL");
  }
});
