// README's "A first segment in five minutes", step by step, through a client
// generated from the server's own /v1/openapi.json (openapi-typescript types,
// openapi-fetch calls). scripts/api-test.sh generates ./generated/schema.d.ts,
// type-checks this file against it with `tsc --strict` and runs it:
//
//   SIFT_URL=http://127.0.0.1:7878 SIFT_ADMIN_KEY=... node dist/walkthrough.js
//
// Every answer is checked; a mismatch makes the run end with exit code 1.
//
// The answers are used as the generated types give them, without casts: a
// field the document leaves out or types loosely fails `tsc`, and the fix
// belongs in the server's schema, not here.

import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

type ApiError = components["schemas"]["Error"];
type Change = components["schemas"]["Change"];

const BASE = process.env.SIFT_URL ?? "http://127.0.0.1:7878";
const ADMIN_KEY = process.env.SIFT_ADMIN_KEY;

let failures = 0;

function check(what: string, ok: boolean, detail?: unknown): void {
  if (ok) {
    console.log(`  ok: ${what}`);
  } else {
    failures += 1;
    console.log(`  MISMATCH: ${what}${detail === undefined ? "" : `: ${JSON.stringify(detail)}`}`);
  }
}

function equal(what: string, got: unknown, want: unknown): void {
  const same = JSON.stringify(got) === JSON.stringify(want);
  check(`${what} = ${JSON.stringify(want)}`, same, same ? undefined : { got });
}

/** The data of a call that must answer `status`; anything else ends the run. */
async function expect<T, E>(
  status: number,
  pending: Promise<{ data?: T; error?: E; response: Response }>,
): Promise<T> {
  const result = await pending;
  const { response } = result;
  if (response.status !== status || result.error !== undefined || result.data === undefined) {
    throw new Error(
      `${response.url} answered ${response.status}, expected ${status}: ${JSON.stringify(result.error ?? result.data)}`,
    );
  }
  return result.data;
}

function step(title: string): void {
  console.log(`\n# ${title}`);
}

function bearer(key: string) {
  return createClient<paths>({ baseUrl: BASE, headers: { Authorization: `Bearer ${key}` } });
}

async function main(): Promise<void> {
  if (!ADMIN_KEY) throw new Error("set SIFT_ADMIN_KEY to the server's admin key");
  console.log(`Walking through README's first segment against ${BASE}`);
  const admin = bearer(ADMIN_KEY);

  // README: the first `sift serve` in a data directory creates a workspace and
  // prints its key. A server that is already running makes one on request.
  step("A workspace and its key (API equivalent of the key `sift serve` prints)");
  const workspace = await expect(
    201,
    admin.POST("/v1/workspaces", { body: { name: "Walk-through shop" } }),
  );
  check(`workspace ${workspace.id} with a key`, workspace.key.startsWith("sk_"), workspace);
  const ws = bearer(workspace.key);

  step("PUT /v1/contacts/ana: properties are merge-patched; a new property creates its field");
  const ana = await expect(
    200,
    ws.PUT("/v1/contacts/{id}", {
      params: { path: { id: "ana" } },
      body: {
        properties: {
          email: "ana@example.com",
          newsletter: true,
          interests: ["shoes", "bags"],
          birth_date: "1990-05-01",
        },
      },
    }),
  );
  equal("ana's id", ana.id, "ana");
  equal("ana's interests", ana.properties.interests, ["bags", "shoes"]);

  step("POST /v1/contacts:batch: many at once, all or nothing");
  await expect(
    200,
    ws.POST("/v1/contacts:batch", {
      body: {
        contacts: [
          { id: "luis", properties: { newsletter: false } },
          { id: "marta", properties: { newsletter: true, interests: ["shoes"] } },
        ],
      },
    }),
  );
  const everyone = await expect(200, ws.GET("/v1/contacts", {}));
  equal(
    "the contacts, in creation order",
    everyone.items.map((c) => c.id),
    ["ana", "luis", "marta"],
  );

  step("POST /v1/segments: a dynamic segment in the text form");
  const shoeLovers = await expect(
    201,
    ws.POST("/v1/segments", {
      body: {
        name: "Shoe lovers",
        kind: "dynamic",
        condition:
          'newsletter = true and interests contains "shoes" and birth_date >= 1965-01-01',
      },
    }),
  );
  check(`segment id ${shoeLovers.id}`, shoeLovers.id.startsWith("seg_"), shoeLovers);
  equal("its size", shoeLovers.size, 1);
  equal("entered on creation", shoeLovers.evaluation?.entered, 1);
  equal("exited on creation", shoeLovers.evaluation?.exited, 0);

  step("POST /v1/segments:preview: a condition without saving it");
  const preview = await expect(
    200,
    ws.POST("/v1/segments:preview", { body: { condition: 'interests contains "shoes"' } }),
  );
  equal("preview size", preview.size, 2);
  equal(
    "preview sample",
    preview.sample.map((c) => c.id).sort(),
    ["ana", "marta"],
  );

  step("PUT /v1/contacts/marta: her birth date arrives and she enters at once");
  const marta = await expect(
    200,
    ws.PUT("/v1/contacts/{id}", {
      params: { path: { id: "marta" } },
      body: { properties: { birth_date: "1988-02-29" } },
    }),
  );
  check(
    "marta is in Shoe lovers",
    marta.segments.some((s) => s.id === shoeLovers.id),
    marta.segments,
  );
  const shoeLoversNow = await expect(
    200,
    ws.GET("/v1/segments/{id}", { params: { path: { id: shoeLovers.id } } }),
  );
  equal("Shoe lovers' size", shoeLoversNow.size, 2);
  const members = await expect(
    200,
    ws.GET("/v1/segments/{id}/contacts", { params: { path: { id: shoeLovers.id } } }),
  );
  equal(
    "its members",
    members.items.map((c) => c.id),
    ["ana", "marta"],
  );

  step("GET /v1/segments/{id}/changes: seqs start at 1, after=0 reads from the beginning");
  const changes = await expect(
    200,
    ws.GET("/v1/segments/{id}/changes", {
      params: { path: { id: shoeLovers.id }, query: { after: 0 } },
    }),
  );
  equal(
    "the changes (seq, contact, change, cause)",
    changes.items.map((c) => [c.seq, c.contact_id, c.change, c.cause]),
    [
      [1, "ana", "entered", "segment_edit"],
      [2, "marta", "entered", "contact_update"],
    ],
  );
  const noAfter = await expect(
    200,
    ws.GET("/v1/segments/{id}/changes", { params: { path: { id: shoeLovers.id } } }),
  );
  equal("without `after`, the same", noAfter.items.map((c) => c.seq), [1, 2]);

  step("GET /v1/contacts/luis/explain: why luis is not in the segment");
  const why = await expect(
    200,
    ws.GET("/v1/contacts/{id}/explain", {
      params: { path: { id: "luis" }, query: { segment: shoeLovers.id } },
    }),
  );
  equal("luis is a member", why.member, false);
  equal("the condition's result for luis", why.explanation.result, false);
  const falseParts = (why.explanation.children ?? [])
    .filter((n) => !n.result)
    .map((n) => n.condition);
  check(
    `the parts luis fails name newsletter: ${JSON.stringify(falseParts)}`,
    falseParts.some((c) => c.includes("newsletter")),
  );

  step("GET /v1/changes/stream: every change as server-sent events, from the beginning");
  const seen = await readStream(ws, 2);
  equal(
    "the stream's first changes (seq, contact)",
    seen.map((c) => [c.seq, c.contact_id]),
    [
      [1, "ana"],
      [2, "marta"],
    ],
  );

  step("POST /v1/events: an `id` makes a replay harmless");
  const purchase = {
    id: "ord-1001",
    contact_id: "ana",
    type: "purchase",
    properties: { amount: 80, category: "shoes" },
  };
  const accepted = await expect(200, ws.POST("/v1/events", { body: purchase }));
  equal("accepted, duplicates", [accepted.accepted, accepted.duplicates], [1, 0]);
  const replay = await expect(200, ws.POST("/v1/events", { body: purchase }));
  equal(
    "the replay: accepted, duplicates, duplicate_indexes",
    [replay.accepted, replay.duplicates, replay.duplicate_indexes],
    [0, 1, [0]],
  );

  step("POST /v1/segments: behaviour and time");
  const recentBuyers = await expect(
    201,
    ws.POST("/v1/segments", {
      body: {
        name: "Recent shoe buyers",
        kind: "dynamic",
        condition: 'performed purchase where category = "shoes" in last 30 days',
      },
    }),
  );
  equal("Recent shoe buyers' size", recentBuyers.size, 1);
  const anaWhy = await expect(
    200,
    ws.GET("/v1/contacts/{id}/explain", {
      params: { path: { id: "ana" }, query: { segment: recentBuyers.id } },
    }),
  );
  equal("ana is a member", anaWhy.member, true);
  equal("the count of her matching purchases", anaWhy.explanation.value, 1);
  const leaves = Date.parse(anaWhy.explanation.next_change ?? "");
  const days = (leaves - Date.now()) / 86_400_000;
  check(
    `she leaves by time in about 30 days (${anaWhy.explanation.next_change})`,
    days > 29.9 && days <= 30.01,
  );

  step("POST /v1/scoring-rules: each matching event adds points to lead_score");
  const rule = await expect(
    201,
    ws.POST("/v1/scoring-rules", {
      body: { event_type: "purchase", where: "amount > 50", points: 10, expires_after: "90d" },
    }),
  );
  check(`rule ${rule.id} rescored ana`, rule.rescored === 1, rule);
  const anaScored = await expect(
    200,
    ws.GET("/v1/contacts/{id}", { params: { path: { id: "ana" } } }),
  );
  equal("ana's lead_score (past events count)", anaScored.lead_score, 10);

  step("Static segments take contacts by hand");
  const gifted = await expect(
    201,
    ws.POST("/v1/segments", { body: { name: "Gifted", kind: "static" } }),
  );
  equal("Gifted starts empty", gifted.size, 0);
  await expect(
    200,
    ws.POST("/v1/segments/{id}/contacts", {
      params: { path: { id: gifted.id } },
      body: { contact_ids: ["ana"] },
    }),
  );
  const giftedMembers = await expect(
    200,
    ws.GET("/v1/segments/{id}/contacts", { params: { path: { id: gifted.id } } }),
  );
  equal("Gifted's members", giftedMembers.items.map((c) => c.id), ["ana"]);

  step("POST /v1/webhooks: entries and exits POSTed, signed, to a URL");
  const hook = await expect(
    201,
    ws.POST("/v1/webhooks", {
      body: {
        url: "https://example.com/hooks/sift",
        secret: "a-long-random-secret",
        segments: [shoeLovers.id],
      },
    }),
  );
  check(`webhook ${hook.id}`, hook.id.startsWith("wh_"), hook);
  const hookNow = await expect(
    200,
    ws.GET("/v1/webhooks/{id}", { params: { path: { id: hook.id } } }),
  );
  equal("its url", hookNow.url, "https://example.com/hooks/sift");
  // The walk-through's server has no business calling example.com.
  await expect(200, ws.DELETE("/v1/webhooks/{id}", { params: { path: { id: hook.id } } }));

  // README shows this with `sift check`; through the API a preview answers the
  // same pointed error.
  step("An invalid condition points at its fault");
  const bad = await ws.POST("/v1/segments:preview", {
    body: { condition: "newsletter = true and birth_date >= 1965-13-01" },
  });
  const error: ApiError | undefined = bad.error;
  equal("status", bad.response.status, 422);
  equal("code", error?.error.code, "invalid_condition");
  equal(
    "line and column",
    [error?.error.details.line, error?.error.details.column],
    [1, 37],
  );
  console.log(`  message: ${error?.error.message}`);

  step("README, a key for an existing data directory: the admin key adds one");
  const workspaces = await expect(200, admin.GET("/v1/workspaces", {}));
  check(
    "the workspace is listed",
    workspaces.items.some((w) => w.id === workspace.id && w.name === "Walk-through shop"),
    workspaces.items,
  );
  const second = await expect(
    201,
    admin.POST("/v1/workspaces/{ws}/keys", { params: { path: { ws: workspace.id } } }),
  );
  equal("the key's id is its first 11 characters", second.id, second.key.slice(0, 11));
  const other = bearer(second.key);
  const listed = await expect(200, other.GET("/v1/segments", {}));
  equal(
    "the new key sees the segments",
    listed.items.map((s) => s.name).sort(),
    ["Gifted", "Recent shoe buyers", "Shoe lovers"],
  );
  await expect(
    200,
    admin.DELETE("/v1/workspaces/{ws}/keys/{key}", {
      params: { path: { ws: workspace.id, key: second.id } },
    }),
  );
  const revoked = await other.GET("/v1/segments", {});
  equal("the revoked key is refused", revoked.response.status, 401);
  equal("with the code", revoked.error?.error.code, "unauthorized");

  step("GET /healthz (operators)");
  const health = await expect(200, admin.GET("/healthz", { parseAs: "text" }));
  console.log(`  healthz: ${JSON.stringify(health)}`);
}

/** Whether a stream event's data has the `Change` schema's shape. */
function isChange(value: unknown): value is Change {
  return (
    typeof value === "object" &&
    value !== null &&
    "seq" in value &&
    typeof value.seq === "number" &&
    "segment_id" in value &&
    typeof value.segment_id === "string" &&
    "contact_id" in value &&
    typeof value.contact_id === "string" &&
    "change" in value &&
    (value.change === "entered" || value.change === "exited") &&
    "at" in value &&
    typeof value.at === "string" &&
    "cause" in value &&
    typeof value.cause === "string"
  );
}

/** Reads the change stream from the beginning until `count` changes arrived. */
async function readStream(ws: ReturnType<typeof bearer>, count: number): Promise<Change[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 10_000);
  try {
    const { data, response } = await ws.GET("/v1/changes/stream", {
      params: { query: { after: 0 } },
      parseAs: "stream",
      signal: abort.signal,
    });
    equal("content type", response.headers.get("content-type"), "text/event-stream");
    if (!data) throw new Error(`the stream answered ${response.status} without a body`);
    const reader = data.getReader();
    const decoder = new TextDecoder();
    const changes: Change[] = [];
    let buffer = "";
    while (changes.length < count) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const line = frame.split("\n").find((l) => l.startsWith("data: "));
        if (!line) continue;
        // The document types the stream as text: each event's data is one
        // change as JSON (docs/api.md, "The change stream").
        const parsed: unknown = JSON.parse(line.slice(6));
        if (!isChange(parsed)) throw new Error(`the stream sent ${line}, not a change`);
        changes.push(parsed);
      }
    }
    await reader.cancel();
    return changes;
  } finally {
    clearTimeout(timer);
  }
}

main().then(
  () => {
    if (failures > 0) {
      console.log(`\nThe walk-through found ${failures} mismatch(es).`);
      process.exit(1);
    }
    console.log("\nThe walk-through passed: every answer was as README says.");
  },
  (error: unknown) => {
    console.error(`\nThe walk-through stopped: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
