-- GET one record by id, rotating over BENCH_ID_COUNT seeded ids.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
common.install()

local base = os.getenv("BENCH_RECORDS_PATH")
local count = tonumber(os.getenv("BENCH_ID_COUNT"))
local i = 0

function request()
  i = i + 1
  return wrk.format("GET", base .. "/" .. common.id("p", common.slot(i, count)))
end
