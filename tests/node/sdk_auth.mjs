// Auth flows through the official PocketBase JS SDK (npm `pocketbase`), for
// client-compatibility tests against Keel or a real PocketBase.
//
//   node sdk_auth.mjs register    <url> <collection> <email> <password>
//   node sdk_auth.mjs login       <url> <collection> <email> <password>
//   node sdk_auth.mjs request-otp <url> <collection> <email>
//   node sdk_auth.mjs otp-login   <url> <collection> <otpId> <code>
//
// Each prints one JSON object on stdout and exits 0. On failure it prints the
// SDK error's `response` (the server's JSON error body) on stderr and exits 1;
// a usage error exits 2.
//
//   register    -> the created record
//   login       -> {token, refreshedToken, record, isValid}: authWithPassword,
//                  then authRefresh, which must return a token for the same record
//   request-otp -> {otpId}
//   otp-login   -> {token, record}
import PocketBase from 'pocketbase';

class CheckError extends Error {}

const commands = {
  async register(pb, collection, email, password) {
    return pb.collection(collection).create({ email, password, passwordConfirm: password });
  },

  async login(pb, collection, email, password) {
    const auth = await pb.collection(collection).authWithPassword(email, password);
    const refreshed = await pb.collection(collection).authRefresh();
    if (typeof refreshed.token !== 'string' || refreshed.token === '') {
      throw new CheckError(`authRefresh returned no token: ${JSON.stringify(refreshed)}`);
    }
    if (refreshed.record?.id !== auth.record.id) {
      throw new CheckError(
        `authRefresh returned record ${refreshed.record?.id}, not ${auth.record.id}`,
      );
    }
    return {
      token: auth.token,
      refreshedToken: refreshed.token,
      record: refreshed.record,
      isValid: pb.authStore.isValid,
    };
  },

  async 'request-otp'(pb, collection, email) {
    const { otpId } = await pb.collection(collection).requestOTP(email);
    return { otpId };
  },

  async 'otp-login'(pb, collection, otpId, code) {
    const { token, record } = await pb.collection(collection).authWithOTP(otpId, code);
    return { token, record };
  },
};

async function main(argv) {
  const [name, url, collection, ...args] = argv;
  const command = commands[name];
  if (command === undefined || url === undefined || collection === undefined
      || args.length !== command.length - 2) {
    process.stderr.write(`usage: sdk_auth.mjs {${Object.keys(commands).join('|')}} `
      + '<url> <collection> <args...>\n');
    return 2;
  }
  const pb = new PocketBase(url);
  pb.autoCancellation(false);
  try {
    const result = await command(pb, collection, ...args);
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
