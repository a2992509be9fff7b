-- wrk script for bench/inspect: bench/proxy/wrk.lua (same arguments and
-- WRKJSON output), but every request carries a new pagination-like cursor
-- in its query (?cursor=c<16 hex>&page=N), so sluice's split-secret history
-- joins and scans a new fragment on every request (its worst common case).
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "../proxy/wrk.lua")

local n = 0
function request()
   n = n + 1
   -- "c" first: a bare 16-digit value that happens to be Luhn-valid with an
   -- issuer prefix (about 1 in 200,000 random hex cursors) is a card number
   -- to the financial rules, and one refusal fails a wrk run.
   local path = string.format("%s?cursor=c%08x%08x&page=%d", wrk.path,
                              math.random(0, 0x7fffffff), math.random(0, 0x7fffffff), n)
   return wrk.format(nil, path)
end
