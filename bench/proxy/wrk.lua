-- wrk script for the sluice proxy bench.
-- Usage: wrk ... -s wrk.lua http://PROXYHOST:PORT -- TARGET_URL HOST
-- Through a proxy, TARGET is an absolute URL (absolute-form request line)
-- and HOST the origin's host:port; directly, TARGET is a path.
-- done() prints one machine-readable line starting with WRKJSON.

function init(args)
   if args[1] ~= nil then
      wrk.path = args[1]
   end
   if args[2] ~= nil then
      wrk.headers["Host"] = args[2]
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"min": %d, "mean": %.2f, "max": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.max,
      latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9)))
end
