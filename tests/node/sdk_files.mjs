// Record files through the official PocketBase JS SDK (npm `pocketbase`), for
// client-compatibility tests against Keel or a real PocketBase.
//
//   node sdk_files.mjs upload <url> <adminEmail> <adminPassword> <collection> <pngPath>
//                             [protectedField]
//
// Signs in as a superuser, creates a record of <collection> with the PNG as a
// `File` in its `image` field (and a `title`), then fetches the file and its
// 100x100 thumb from the URLs `pb.files.getURL` builds. With [protectedField],
// the PNG also goes to that (protected) file field, which is fetched once
// without a file token (PocketBase answers 404) and once with one.
//
// Prints one JSON object on stdout and exits 0:
//
//   {id, image, url, thumbUrl, originalBytes, thumbBytes, thumbType, fileToken,
//    protected?: {url, statusWithoutToken, statusWithToken, bytes}}
//
// where `*Bytes` are the fetched bodies in base64 and `thumbType` is the thumb
// response's Content-Type. On failure it prints the SDK error's `response` (the
// server's JSON error body) on stderr and exits 1; a usage error exits 2.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

import PocketBase from 'pocketbase';

class CheckError extends Error {}

/** The body of a GET that must answer 200, with its Content-Type. */
async function fetchOk(url) {
  const response = await fetch(url);
  const body = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) {
    throw new CheckError(`GET ${url} answered ${response.status}: ${body.toString('utf8')}`);
  }
  return { body, type: response.headers.get('content-type') };
}

const commands = {
  async upload(pb, email, password, collection, pngPath, protectedField) {
    await pb.collection('_superusers').authWithPassword(email, password);
    const png = await readFile(pngPath);
    const file = () => new File([png], basename(pngPath), { type: 'image/png' });
    const data = { title: 'sdk upload', image: file() };
    if (protectedField !== undefined) {
      data[protectedField] = file();
    }
    const record = await pb.collection(collection).create(data);

    const url = pb.files.getURL(record, record.image);
    const thumbUrl = pb.files.getURL(record, record.image, { thumb: '100x100' });
    const original = await fetchOk(url);
    const thumb = await fetchOk(thumbUrl);
    const fileToken = await pb.files.getToken();
    const result = {
      id: record.id,
      image: record.image,
      url,
      thumbUrl,
      originalBytes: original.body.toString('base64'),
      thumbBytes: thumb.body.toString('base64'),
      thumbType: thumb.type,
      fileToken,
    };
    if (protectedField !== undefined) {
      const name = record[protectedField];
      const plainUrl = pb.files.getURL(record, name);
      const withoutToken = await fetch(plainUrl);
      await withoutToken.arrayBuffer();
      const withToken = await fetch(pb.files.getURL(record, name, { token: fileToken }));
      const bytes = Buffer.from(await withToken.arrayBuffer());
      result.protected = {
        url: plainUrl,
        statusWithoutToken: withoutToken.status,
        statusWithToken: withToken.status,
        bytes: bytes.toString('base64'),
      };
    }
    return result;
  },
};

async function main(argv) {
  const [name, url, ...args] = argv;
  const command = commands[name];
  // The command's last parameter is optional.
  if (command === undefined || url === undefined
      || args.length < command.length - 2 || args.length > command.length - 1) {
    process.stderr.write('usage: sdk_files.mjs upload <url> <adminEmail> <adminPassword> '
      + '<collection> <pngPath> [protectedField]\n');
    return 2;
  }
  const pb = new PocketBase(url);
  pb.autoCancellation(false);
  try {
    const result = await command(pb, ...args);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof CheckError) {
      process.stderr.write(`${JSON.stringify({ message: err.message })}\n`);
    } else if (err?.response !== undefined) {
      // ClientResponseError: `response` is the server's error body, `status` its
      // HTTP status (0 when the request never got an answer).
      process.stderr.write(`${JSON.stringify(err.response)}\n`);
      process.stderr.write(`status ${err.status} from ${err.url}\n`);
    } else {
      process.stderr.write(`${err?.stack ?? err}\n`);
    }
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
