// Realtime through the official PocketBase JS SDK (npm `pocketbase`), for
// client-compatibility tests against Keel or a real PocketBase.
//
//   node sdk_realtime.mjs <url> <collection> <count> [filter]
//
// Subscribes to `<collection>/*` with `pb.collection(c).subscribe('*', cb)`,
// and, when a filter is given, a second time with `{filter}` as options. Then
// prints `{"ready": true, "clientId": ...}` and, for each event, one line
// `{"sub": "all"|"filtered", "action", "id", "title", "change"}`. It exits 0
// once <count> events arrived, 1 on an error or after TIMEOUT_MS; a usage
// error exits 2.
//
// Node 20 has no global EventSource; the SDK needs one, so the `eventsource`
// package provides it.
import { EventSource } from 'eventsource';
import PocketBase from 'pocketbase';

globalThis.EventSource = EventSource;

const TIMEOUT_MS = 30_000;

function print(value) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

async function main(argv) {
  const [url, collection, countText, filter] = argv;
  const count = Number(countText);
  if (url === undefined || collection === undefined || !Number.isInteger(count) || count < 1) {
    process.stderr.write('usage: sdk_realtime.mjs <url> <collection> <count> [filter]\n');
    return 2;
  }
  const pb = new PocketBase(url);
  pb.autoCancellation(false);
  let received = 0;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  const listener = (sub) => (event) => {
    print({
      sub,
      action: event.action,
      id: event.record?.id,
      title: event.record?.title,
      change: event.change ?? '',
    });
    received += 1;
    if (received >= count) {
      finish(0);
    }
  };
  const timer = setTimeout(() => {
    process.stderr.write(`timed out after ${received} of ${count} events\n`);
    finish(1);
  }, TIMEOUT_MS);
  try {
    await pb.collection(collection).subscribe('*', listener('all'));
    if (filter !== undefined) {
      await pb.collection(collection).subscribe('*', listener('filtered'), { filter });
    }
    print({ ready: true, clientId: pb.realtime.clientId });
    return await done;
  } catch (err) {
    if (err?.response !== undefined) {
      process.stderr.write(`${JSON.stringify(err.response)}\n`);
      process.stderr.write(`status ${err.status} from ${err.url}\n`);
    } else {
      process.stderr.write(`${err?.stack ?? err}\n`);
    }
    return 1;
  } finally {
    clearTimeout(timer);
  }
}

// The open EventSource would keep node running: exit explicitly.
process.exit(await main(process.argv.slice(2)));
