-- POST /v1/auth/login with the accounts in ACCOUNTS (one email per line).
local emails = {}
local counter = 0

function init(args)
  for line in io.lines(os.getenv("ACCOUNTS")) do emails[#emails + 1] = line end
end

function request()
  counter = counter + 1
  local body = '{"email":"' .. emails[counter % #emails + 1] .. '","password":"bench-passphrase-Ravel-1875"}'
  return wrk.format("POST", "/v1/auth/login", { ["Content-Type"] = "application/json" }, body)
end
