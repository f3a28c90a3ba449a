-- GET /v1/articles/{slug} (or PREFIX{slug}: /articles/ for the site's pages) over the
-- slugs in SLUGS (one per line), each thread taking every n-th, with an optional bearer
-- token in TOKEN. Each request is built once, in
-- init, so that the load generator costs as little per request as it does for
-- /healthz (wrk without a script).
local requests = {}
local counter, step = 0, 2
local threads = 0

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

function init(args)
  local headers = {}
  local token = os.getenv("TOKEN")
  if token and token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
  local prefix = os.getenv("PREFIX")
  if not prefix or prefix == "" then
    prefix = "/v1/articles/"
  end
  for line in io.lines(os.getenv("SLUGS")) do
    requests[#requests + 1] = wrk.format("GET", prefix .. line, headers)
  end
  counter = tonumber(offset) or 0
end

function request()
  counter = counter + step
  return requests[counter % #requests + 1]
end
