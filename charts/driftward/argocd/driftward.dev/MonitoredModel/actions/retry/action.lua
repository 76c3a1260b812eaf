-- Ask the driftward operator to deploy the spec's rolled-back version again, as a new candidate.
-- A new value of driftward.dev/retry is a new request; the time makes it new.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["driftward.dev/retry"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
