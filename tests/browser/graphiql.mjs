// Browser check of GraphiQL on a running idgate: what a person does with it, in Debian's
// Chromium, headless. Starts nothing itself (.ci/browser-check starts idgate).
//
//   GRAPHIQL_URL  the page, e.g. http://127.0.0.1:18080/graphql (required)
//   CHROMIUM      the browser executable (default /usr/bin/chromium)
//   SCREENSHOT    where to save a PNG of the final state (optional; always saved on failure
//                 when set)
//
// Types a query into the editor, runs it, reads the answer in the result pane, opens the docs
// and finds the Query type, opens and closes the settings dialog, and fails on any
// Content-Security-Policy violation, page error, failed request or request that left the origin.

import { chromium } from 'playwright-core';

const url = process.env.GRAPHIQL_URL;
if (!url) {
  console.error('GRAPHIQL_URL must name the GraphiQL page, e.g. http://127.0.0.1:18080/graphql');
  process.exit(2);
}
const origin = new URL(url).origin;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const screenshot = process.env.SCREENSHOT;
const QUERY = '{ authConfig { loginRequiresOtp } }';
const TIMEOUT = 30_000;

const problems = [];
const browser = await chromium.launch({
  executablePath,
  headless: true,
  // Root in CI containers cannot use Chromium's sandbox.
  args: ['--no-sandbox'],
});
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);

  // Chromium reports CSP violations on the console; the DOM event catches them as well.
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`);
    });
  });
  page.on('console', (message) => {
    const text = message.text();
    if (/Content Security Policy|Refused to/i.test(text)) problems.push(`console: ${text}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('request', (request) => {
    const target = request.url();
    if (!target.startsWith(origin) && !target.startsWith('data:')) problems.push(`request off-origin: ${target}`);
  });
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`));

  const response = await page.goto(url, { waitUntil: 'load' });
  if (response?.status() !== 200) throw new Error(`GET ${url} answered ${response?.status()}`);

  // Type the query over the welcome text.
  const editor = page.locator('.graphiql-query-editor .CodeMirror');
  await editor.waitFor();
  await editor.click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  await page.keyboard.type(QUERY);
  const typed = await editor.evaluate((el) => el.CodeMirror.getValue());
  if (typed.replace(/\s+/g, ' ').trim() !== QUERY) throw new Error(`the editor holds ${JSON.stringify(typed)}`);

  await page.locator('.graphiql-execute-button').click();
  const result = page.locator('.graphiql-response .CodeMirror');
  await page.waitForFunction(
    () => document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue().includes('"loginRequiresOtp"'),
  );
  const answer = await result.evaluate((el) => el.CodeMirror.getValue());
  if (!answer.includes('"loginRequiresOtp": true')) throw new Error(`the result pane shows ${answer}`);
  console.log('result pane: "loginRequiresOtp": true');

  await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
  const docs = page.locator('.graphiql-doc-explorer');
  await docs.getByText('Query', { exact: true }).first().waitFor();
  console.log('docs pane: lists Query');

  // The settings dialog locks scrolling with a <style> element that only the page's style
  // nonce admits: a CSP regression there shows up as a violation below.
  await page.getByRole('button', { name: 'Open settings dialog' }).click();
  await page.getByRole('dialog').waitFor();
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'detached' });

  const violations = await page.evaluate(() => window.__cspViolations);
  problems.push(...violations.map((v) => `CSP violation: ${v}`));
} catch (error) {
  problems.push(`failed: ${error.message}`);
} finally {
  if (page && screenshot) {
    await page.screenshot({ path: screenshot }).catch((e) => problems.push(`screenshot: ${e.message}`));
    console.log(`screenshot: ${screenshot}`);
  }
  await browser.close();
}

if (problems.length) {
  console.error(`GraphiQL browser check failed:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('GraphiQL browser check passed');
