-- POST a new record with a body no other request sends (thread id + counter).
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
common.install()

local base = os.getenv("BENCH_RECORDS_PATH")
local tag = os.getenv("BENCH_TAG")
local i = 0

function request()
  i = i + 1
  local body = string.format(
    '{"title":"created %s t%d n%d","body":"bench body %s %d %d","views":%d,"published":%s}',
    tag, tid, i, tag, tid, i, i % 1001, tostring(i % 2 == 0))
  return wrk.format("POST", base, nil, body)
end
