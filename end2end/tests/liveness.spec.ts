import { test, expect, Page } from "@playwright/test";
import { joinThroughHome, messageWith, say, uniqueRoom } from "./helpers";

/** Texts of the delivered messages on a page, in display order. */
const texts = (p: Page) => p.locator("li.msg:not(.pending) .text").allTextContents();

test("a connection that dies without the browser noticing is detected, replaced, and loses nothing", async ({ browser }) => {
  const room = uniqueRoom("silent");
  const ada = await joinThroughHome(browser, "Ada", room);

  // Bob's room connections pass through a switch: when it is cut, frames stop in both directions
  // but the browser sees no close and no error, like a laptop waking on another network.
  const bobContext = await browser.newContext();
  let cut = false;
  let connections = 0;
  await bobContext.routeWebSocket(/\/api\/rooms\/.*\/ws$/, (ws) => {
    connections += 1;
    const mine = connections;
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      if (!(cut && mine === 1)) server.send(m);
    });
    server.onMessage((m) => {
      if (!(cut && mine === 1)) ws.send(m);
    });
  });
  const page = await bobContext.newPage();
  await page.goto("/");
  await page.evaluate(() => localStorage.setItem("palaver.name", "Bob"));
  await page.goto(`/r/${room}`);
  const status = page.getByRole("status");
  await expect(status).toHaveText(/Connected/);
  await say(ada.page, "before");
  await expect(messageWith(page, "before")).toHaveCount(1);

  // Every state the status line shows from here on (a reconnect on loopback takes well under a
  // second: too quick to catch by polling).
  await page.evaluate(() => {
    const el = document.querySelector('p.status[role="status"]')!;
    const seen: string[] = ((window as any).__statuses = []);
    new MutationObserver(() => seen.push(el.textContent ?? "")).observe(el, {
      childList: true,
      subtree: true,
      characterData: true,
    });
  });

  cut = true;
  const cutAt = Date.now();
  await say(ada.page, "while cut 1");
  await say(page, "typed on a dead connection");
  // The send expects an answer within 5 s; without one the client gives up on the connection
  // and opens a new one.
  await expect.poll(() => connections, { timeout: 8_000 }).toBeGreaterThanOrEqual(2);
  expect(Date.now() - cutAt).toBeLessThan(8_000);
  await say(ada.page, "while cut 2");

  // The new connection (not cut) resumes: everything once, in order, the dead-connection message too.
  await expect(status).toHaveText(/Connected/, { timeout: 20_000 });
  // The person was shown that the connection was being replaced.
  const statuses: string[] = await page.evaluate(() => (window as any).__statuses);
  expect(statuses.some((t) => /Reconnecting|Connecting/.test(t))).toBe(true);
  // Bob's resent message and Ada's second one race for a number; both pages agree on the order.
  const expected = ["before", "typed on a dead connection", "while cut 1", "while cut 2"];
  await expect.poll(async () => (await texts(page)).sort()).toEqual(expected);
  await expect.poll(() => texts(ada.page)).toEqual(await texts(page));
  await expect(page.locator("li.msg.pending")).toHaveCount(0);

  await ada.context.close();
  await bobContext.close();
});
