// The dashboard in a real browser (Debian's chromium, driven by playwright-core): log in with
// a pairing code, upload a file, see it listed, download it and compare its bytes, revoke
// another device, and take a screenshot. Run by cli/dashboard_cli_test.sh.
// Usage: node dashboard.mjs URL PAIRING_CODE OTHER_DEVICE_ID OTHER_TOKEN OUT_DIR
import { chromium } from "playwright-core";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

const [url, code, otherId, otherToken, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error("usage: dashboard.mjs URL CODE OTHER_DEVICE_ID OTHER_TOKEN OUT_DIR");
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });

function check(ok, what) {
  if (!ok) throw new Error("check failed: " + what);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = null;
const page = await (await browser.newContext({ acceptDownloads: true })).newPage();
page.setDefaultTimeout(20000);
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
try {
  await page.goto(url + "/");
  await page.fill("#login-secret", code);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#app:not([hidden])");
  console.log("logged in");

  // Upload a file of random bytes; it shows in the listing.
  const bytes = crypto.randomBytes(700 * 1024);
  const local = path.join(outDir, "upload.bin");
  fs.writeFileSync(local, bytes);
  await page.setInputFiles("#upload-input", local);
  const row = '#files tr[data-name="upload.bin"]';
  await page.waitForSelector(row);
  check((await page.textContent('#queue tbody')).includes("done"), "the upload queue says done");
  console.log("uploaded and listed");

  // Download it: the same bytes.
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.click(row + " button.download"),
  ]);
  const saved = path.join(outDir, "downloaded.bin");
  await download.saveAs(saved);
  check(Buffer.compare(fs.readFileSync(saved), bytes) === 0, "downloaded bytes are the uploaded");
  console.log("downloaded, bytes equal");

  // Nodes and durability show.
  await page.click('button[data-tab="nodes"]');
  await page.waitForSelector("#nodes tbody tr");
  check((await page.$$("#nodes tbody tr")).length === 6, "six nodes listed");
  await page.click('button[data-tab="durability"]');
  await page.waitForSelector('#durability-summary:has-text("packs")');

  // Revoke the other device; its token stops working at once.
  await page.click('button[data-tab="devices"]');
  const other = `#devices tr[data-id="${otherId}"]`;
  await page.click(other + " button.revoke");
  // (Selectors, not waitForFunction: the page's CSP forbids the eval that would need.)
  await page.waitForSelector(other + ':has-text("revoked")');
  const res = await fetch(url + "/api/v1/whoami", { headers: { Authorization: "Bearer " + otherToken } });
  check(res.status === 401, "the revoked token gets 401, not " + res.status);
  console.log("revoked");
  check(errors.length === 0, "no page errors: " + errors.join("; "));
} catch (e) {
  failed = e;
} finally {
  await page.screenshot({ path: path.join(outDir, "dashboard.png"), fullPage: true });
  await browser.close();
}
if (failed) {
  console.error("FAIL:", failed.message);
  process.exit(1);
}
console.log("PASS (screenshot: " + path.join(outDir, "dashboard.png") + ")");
