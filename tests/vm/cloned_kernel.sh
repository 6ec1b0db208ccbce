# The guest side of the cloned-kernel scenario (tests/vm/cloned_kernel.py), sourced by
# tests/vm/init when the kernel command line says vmtest=cloned-kernel, with sysgenid.ko
# loaded; it never returns. Output goes to ttyS1, as init's does.
#
# One process per snapsafe mode, each printing one value per tick (vm_guest ticks, the
# `@T LABEL TICK GEN VALUE NS` lines of tests/vm/guest.cc), all watching one counter file
# except the kernel-backed one:
#   ck-counter      SNAPSAFE_SOURCE=counter-file: buffered, the fastest keystream the CPU has
#   ck-counter-evp  the same on OpenSSL's keystream (SNAPSAFE_KEYSTREAM=evp)
#   ck-auto         the default selection: SysGenID (loaded) and the named counter file
#   ck-kernel       SNAPSAFE_SOURCE=kernel: every draw from getrandom(2), XOR RDRAND if the
#                   CPU has it
#   ck-sysgenid     SNAPSAFE_SOURCE=sysgenid: a VM source only, which a same-GUID restore
#                   does not move and a counter-file bump does not reach (reported: what
#                   remains)
# and the agent (vm_ck_agent serve), which takes the host's lines on ttyS2 (a third serial
# port the host connects to): `reseed` before the snapshot, then in each copy `bump VALUE`
# (snapsafe genid bump --file F --set VALUE --reseed-kernel) or `none`.
counter=/run/snapsafe/generation
mkdir -p /run/snapsafe
echo "@cpu $(/vm_ck_agent cpu)"
/vm_snapsafe_counter create "$counter" >/dev/null || halt "cannot create $counter"
# What each mode's selection is (`snapsafe status` under the same environment), one line:
#   @M LABEL: source: ... watching: ... keystream: ... kernel RNG: ...
for mode in ck-counter:counter-file: ck-counter-evp:counter-file:evp ck-auto:auto: \
            ck-kernel:kernel:; do
  label=${mode%%:*} rest=${mode#*:}
  keystream=${rest#*:}
  echo "@M $label: $(env SNAPSAFE_COUNTER_FILE=$counter SNAPSAFE_SOURCE=${rest%%:*} \
    ${keystream:+SNAPSAFE_KEYSTREAM=$keystream} /vm_snapsafe status 2>&1 |
    grep -E '^(source|watching|keystream|kernel RNG):' | tr -s ' \n' ' ')"
done
SNAPSAFE_SOURCE=counter-file SNAPSAFE_COUNTER_FILE=$counter /vm_guest ticks ck-counter "$tick" &
SNAPSAFE_SOURCE=counter-file SNAPSAFE_COUNTER_FILE=$counter SNAPSAFE_KEYSTREAM=evp \
  /vm_guest ticks ck-counter-evp "$tick" &
SNAPSAFE_COUNTER_FILE=$counter /vm_guest ticks ck-auto "$tick" &
SNAPSAFE_SOURCE=kernel /vm_guest ticks ck-kernel "$tick" &
SNAPSAFE_SOURCE=sysgenid /vm_guest ticks ck-sysgenid "$tick" &
/vm_ck_agent serve /dev/ttyS2 "$counter" /vm_snapsafe &
echo "@ready uptime=$(cut -d' ' -f1 /proc/uptime)"
while :; do sleep 3600; done   # PID 1 never exits; the host stops the VM
