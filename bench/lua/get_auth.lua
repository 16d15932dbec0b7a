-- GET the URL given to wrk as the signed-in member whose token is BENCH_TOKEN.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
common.install()
wrk.headers["Authorization"] = os.getenv("BENCH_TOKEN")
