-- GET /v1/articles/{slug} over the slugs in SLUGS (one per line), each thread taking
-- every n-th, with an optional bearer token in TOKEN.
local slugs = {}
local counter, step = 0, 2
local headers = {}
local threads = 0

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(os.getenv("SLUGS")) do
    slugs[#slugs + 1] = line
  end
  counter = tonumber(offset) or 0
  local token = os.getenv("TOKEN")
  if token and token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
end

function request()
  counter = counter + step
  return wrk.format("GET", "/v1/articles/" .. slugs[counter % #slugs + 1], headers)
end
