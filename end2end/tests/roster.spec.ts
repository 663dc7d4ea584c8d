import { test, expect, Page } from "@playwright/test";
import { hydrated, joinThroughHome, uniqueRoom } from "./helpers";

/** Opens `count` connections to `room` from one page, each joining as "`prefix` NNN", and keeps
 * them open: a crowd without a browser tab each. */
async function crowd(page: Page, room: string, count: number, prefix = "guest"): Promise<void> {
  await page.goto("/");
  await hydrated(page);
  await page.evaluate(
    async ({ room, count, prefix }) => {
      const held: WebSocket[] = [];
      (window as unknown as { crowd: WebSocket[] }).crowd = held;
      for (let i = 0; i < count; i++) {
        const ws = new WebSocket(`ws://${location.host}/api/rooms/${room}/ws`);
        await new Promise((opened, failed) => {
          ws.onopen = opened;
          ws.onerror = () => failed(new Error(`connection ${i} refused`));
        });
        ws.send(JSON.stringify({ type: "join", name: `${prefix} ${String(i).padStart(3, "0")}` }));
        held.push(ws);
      }
    },
    { room, count, prefix },
  );
}

test("a big room shows its count, a page of names, more on request, and finds someone", async ({ browser }) => {
  const room = uniqueRoom("crowd");
  const ada = await joinThroughHome(browser, "Ada", room);
  const others = await browser.newContext();
  await crowd(await others.newPage(), room, 149);

  const roster = ada.page.locator("details.roster");
  await expect(roster.locator("summary")).toHaveText("150 online");
  await roster.locator("summary").click();
  // One page of names; the rest on request.
  await expect(roster.getByRole("listitem")).toHaveCount(100);
  await expect(roster.getByRole("listitem").first()).toHaveText("Ada");
  await ada.page.screenshot({ path: "test-results/roster-page.png" });
  await roster.getByRole("button", { name: "Show more" }).click();
  await expect(roster.getByRole("listitem")).toHaveCount(150);
  await expect(roster.getByRole("button", { name: "Show more" })).toHaveCount(0);
  // On a phone, in dark mode: the list fits the screen and scrolls inside itself.
  await ada.page.setViewportSize({ width: 390, height: 760 });
  await ada.page.emulateMedia({ colorScheme: "dark" });
  await roster.getByRole("listitem").nth(120).scrollIntoViewIfNeeded();
  await ada.page.screenshot({ path: "test-results/roster-phone-dark.png" });
  await ada.page.setViewportSize({ width: 1280, height: 720 });
  await ada.page.emulateMedia({ colorScheme: "light" });

  // Search asks the room: everyone whose name contains what was typed.
  const search = roster.getByLabel("Find someone in this room");
  await search.fill("guest 14");
  await expect(roster.getByRole("listitem")).toHaveText(
    ["140", "141", "142", "143", "144", "145", "146", "147", "148"].map((n) => `guest ${n}`),
  );
  await ada.page.screenshot({ path: "test-results/roster-search.png" });
  await search.fill("nobody like this");
  await expect(roster.getByText("Nobody here by that name.")).toBeVisible();
  await search.fill("");
  await expect(roster.getByRole("listitem")).toHaveCount(150);

  // In a room this big, arrivals are counted, not named.
  const before = await ada.page.locator("li.notice").count();
  const late = await browser.newContext();
  await crowd(await late.newPage(), room, 1, "latecomer");
  await expect(roster.locator("summary")).toHaveText("151 online");
  await expect(ada.page.locator("li.notice")).toHaveCount(before);

  await others.close();
  await late.close();
  await expect(roster.locator("summary")).toHaveText("1 online");
  await ada.context.close();
});
