# Shared by the end-to-end test scripts (source it): counted checks; each script ends with
# `echo "$pass passed, $fail failed"` and a non-zero exit when a check failed.
pass=0 fail=0
check() {  # check NAME EXPECTED ACTUAL
  if [[ "$2" == "$3" ]]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $1: expected [$2], got [$3]"; fi
}
