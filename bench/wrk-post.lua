-- wrk script: POST the file named by the BODY environment variable to every request.
local f = assert(io.open(os.getenv("BODY") or "testdata/requests/bench-2k.json", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
wrk.headers["Content-Type"] = "application/json"
f:close()
