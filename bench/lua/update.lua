-- PATCH a seeded record (rotating over BENCH_ID_COUNT ids) with a unique body.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
common.install()

local base = os.getenv("BENCH_RECORDS_PATH")
local count = tonumber(os.getenv("BENCH_ID_COUNT"))
local tag = os.getenv("BENCH_TAG")
local i = 0

function request()
  i = i + 1
  local id = common.id("p", common.slot(i, count))
  local body = string.format('{"title":"updated %s t%d n%d","views":%d}', tag, tid, i, i % 1001)
  return wrk.format("PATCH", base .. "/" .. id, nil, body)
end
