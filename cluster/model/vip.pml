/*
 * halo's VIP protocol (docs/cluster-protocol.md) for the SPIN model checker.
 * scripts/check-model runs it; cluster/model/README.md says what is modelled.
 *
 * Properties:
 *   safety  (assert, wherever it could break) at most one node has the VIP
 *           in its kernel while its link is up (it answers ARP and TCP);
 *   assign  (assert) the table gives the VIP a new holder only when no node
 *           has it active: the previous holder released it, was fenced, or
 *           (watchdog) was reset;
 *   live    once the faults are over and healed, with a quorum connected and
 *           a working fence agent, the VIP is held again.
 *
 * Compile-time switches:
 *   WATCHDOG          the watchdog-backed expiry is on
 *   BROKEN_TAKEOVER   the leader frees the VIP of a silent holder without a
 *                     fence (keepalived): must fail
 *   BROKEN_PET        the watchdog is petted whenever the process runs, lease
 *                     or not, so the bound running out proves nothing: must
 *                     fail (with WATCHDOG)
 *   BROKEN_ORDER      a node reports the release before the address has left
 *                     its kernel: must fail
 *   BROKEN_UNFENCE    unfencing needs no repair first: must fail
 */

#define N        3
#define MAJORITY 2
#define NONE     255

#ifndef FAULTS
#define FAULTS   3
#endif
#ifndef EPOCHS
#define EPOCHS   4
#endif

/* The replicated table, as committed. */
byte holder = NONE;
byte epoch = 0;         /* counts assignments; the holder's assignment is epoch */
bool fenced[N];

/* The world. */
bool alive[N];          /* the process runs (not crashed, not paused) */
bool crashed[N];        /* dead, to be restarted (else: paused, to resume) */
bool linked[N];         /* its link is up: fencing takes it down */
bool inq[N];            /* connected to the other voters */
bool kernel[N];         /* the VIP is in its kernel */
bool healthy[N];
bool reset[N];          /* its watchdog fired: the machine reset */
bool repaired[N];       /* a fenced node that was restarted after fencing */
byte faults = 0;
bool healed = false;    /* the faults are over and repaired */

/* Each node's own state. */
byte vh[N];             /* the holder in its applied table */
byte ve[N];             /* the epoch in its applied table */
bool vf[N];             /* fenced, in its applied table */
bool lease[N];          /* a grant from a leader with quorum, still valid */
byte rel[N];            /* the epoch it removed and will never add again */
byte start[N];          /* assignments up to this epoch predate its start */
byte said[N];           /* the released epoch in its last ping the leader has:
                         * a ping in flight survives the node's restart */

#define active(i)    (kernel[i] && linked[i])
#define nactive      (active(0) + active(1) + active(2))
#define connected(i) (alive[i] && inq[i] && linked[i])
#define quorum       (connected(0) + connected(1) + connected(2) >= MAJORITY)
#define current(i)   (vh[i] == holder && ve[i] == epoch && vf[i] == fenced[i])
#define elig(j)      (!fenced[j] && connected(j) && healthy[j])
#define mended(j)    (fenced[j] && repaired[j])
#define wants(i)     (vh[i] == i && ve[i] != rel[i] && ve[i] > start[i] && lease[i] && healthy[i] && !vf[i])

/* Safety is asserted where the number of active nodes can grow (an
 * address added, a link brought up), which is the same as [] (nactive <= 1)
 * without a never claim doubling the search. */
#define safe()  assert(nactive <= 1)
ltl live { [] (healed -> <> (nactive == 1)) }

proctype Node(byte i) {
end:	do
	/* Apply the table (late, or not for a while: at any moment), and
	 * with it, the grant the leader sent after verifying its quorum: a
	 * grant counts only once the node's table is at the grant's index. */
	:: atomic { connected(i) && (!current(i) || quorum && !lease[i]) ->
		vh[i] = holder; ve[i] = epoch; vf[i] = fenced[i];
		if :: quorum -> lease[i] = true :: else -> skip fi }
	/* The lease runs out once the grants stop: cut off from the peers, or
	 * no quorum. (Grants lost while connected are a partition that
	 * heals, which the world already does.) */
	:: atomic { lease[i] && !(connected(i) && quorum) -> lease[i] = false }
	/* Hold it exactly while the table, the lease and health allow. */
	:: atomic { alive[i] && !kernel[i] && wants(i) -> kernel[i] = true; safe() }
#ifdef BROKEN_ORDER
	:: atomic { alive[i] && kernel[i] && !wants(i) && vh[i] == i && rel[i] != ve[i] -> rel[i] = ve[i] }
	:: atomic { alive[i] && kernel[i] && !wants(i) -> kernel[i] = false }
#else
	:: atomic { alive[i] && kernel[i] && !wants(i) ->
		kernel[i] = false;
		if :: vh[i] == i -> rel[i] = ve[i] :: else -> skip fi }
#endif
	/* Assigned but unable to hold it: release it at once. */
	:: atomic { alive[i] && !kernel[i] && vh[i] == i && ve[i] != rel[i] &&
	            (!healthy[i] || vf[i] || ve[i] <= start[i]) -> rel[i] = ve[i] }
	/* Its next ping says so. */
	:: atomic { connected(i) && said[i] != rel[i] -> said[i] = rel[i] }
	od
}

proctype Leader() {
	byte j;
end:	do
	/* Assign a free VIP to an eligible node (any of them). */
	:: atomic { quorum && holder == NONE && epoch < EPOCHS && (elig(0) || elig(1) || elig(2)) ->
		if
		:: elig(0) -> j = 0
		:: elig(1) -> j = 1
		:: elig(2) -> j = 2
		fi;
		assert(nactive == 0);
		holder = j; epoch++ }
	/* Free a VIP whose holder said it released that epoch. */
	:: atomic { quorum && holder != NONE && said[holder] == epoch -> holder = NONE }
	/* Fence a silent holder (or, before all is healed, spuriously a live
	 * one: always safe). Success takes its link down, then is committed. */
	:: atomic { quorum && holder != NONE && !fenced[holder] && (!healed || !connected(holder)) ->
		if
		:: linked[holder] = false; fenced[holder] = true; holder = NONE
		:: !healed -> skip   /* the agent failed or timed out: the VIP stays down */
		fi }
#ifdef WATCHDOG
	/* The self-fencing bound ran out: the silent holder reset. */
#ifdef BROKEN_PET
	:: atomic { quorum && holder != NONE && !connected(holder) && (reset[holder] || !lease[holder]) -> holder = NONE }
#else
	:: atomic { quorum && holder != NONE && !connected(holder) && reset[holder] -> holder = NONE }
#endif
#endif
#ifdef BROKEN_TAKEOVER
	:: atomic { quorum && holder != NONE && !connected(holder) -> holder = NONE }
#endif
	/* Unfence a node after repair: its agent turns its link back on. */
#ifdef BROKEN_UNFENCE
	:: atomic { quorum && (fenced[0] || fenced[1] || fenced[2]) ->
		if
		:: fenced[0] -> j = 0
		:: fenced[1] -> j = 1
		:: fenced[2] -> j = 2
		fi;
		linked[j] = true; fenced[j] = false; safe() }
#else
	:: atomic { quorum && (mended(0) || mended(1) || mended(2)) ->
		if
		:: mended(0) -> j = 0
		:: mended(1) -> j = 1
		:: mended(2) -> j = 2
		fi;
		linked[j] = true; fenced[j] = false; repaired[j] = false; safe() }
#endif
	od
}

#ifdef WATCHDOG
/* A watchdog resets a machine that stopped petting it: pets happen only
 * while its process runs with a valid lease. A crashed process does not
 * stop it (an unexpected close keeps it counting). */
proctype Watchdog(byte i) {
end:	do
#ifdef BROKEN_PET
	:: atomic { !alive[i] && !reset[i] && holder == i ->
#else
	:: atomic { (!alive[i] || !lease[i]) && !reset[i] && holder == i ->
#endif
		reset[i] = true; kernel[i] = false; alive[i] = false; crashed[i] = true; lease[i] = false }
	od
}
#endif

inline restart(i) {
	alive[i] = true; crashed[i] = false; reset[i] = false;
	kernel[i] = false;                    /* halo clears configured VIPs at start */
	start[i] = ve[i];                     /* its log had at least what it applied */
	rel[i] = 0; lease[i] = false
}

proctype World() {
	byte i;
	do
	:: faults < FAULTS ->
		select(i : 0 .. N-1);
		atomic {
			if
			:: alive[i] -> alive[i] = false; crashed[i] = true; lease[i] = false  /* kill -9: the kernel keeps the VIP */
			:: alive[i] -> alive[i] = false; crashed[i] = false                   /* SIGSTOP: everything kept */
			:: !alive[i] && !crashed[i] -> alive[i] = true                        /* SIGCONT, with stale state */
			:: !alive[i] && crashed[i] && linked[i] -> restart(i)
			:: !linked[i] && !repaired[i] -> restart(i); repaired[i] = true        /* repair of a fenced node */
			:: inq[i] = !inq[i]                                                 /* partition from the peers, or its end */
			:: healthy[i] = !healthy[i]
			fi;
			faults++ }
	:: faults >= FAULTS -> break
	od;
	/* Heal: partitions end, health returns, paused processes resume,
	 * crashed ones restart, fenced ones are repaired (and, without a
	 * leader to unfence them, an operator turns their port back on);
	 * from now on the fence agent works. */
	atomic {
		for (i : 0 .. N-1) {
			inq[i] = true; healthy[i] = true;
			if
			:: !alive[i] && !crashed[i] -> alive[i] = true
			:: !alive[i] && crashed[i] -> restart(i)
			:: else -> skip
			fi;
			if
			:: !linked[i] -> restart(i); repaired[i] = true
			:: else -> skip
			fi
		}
		if
		:: !quorum -> for (i : 0 .. N-1) { linked[i] = true }; safe()
		:: else -> skip
		fi;
		healed = true
	}
}

init {
	byte i;
	atomic {
		for (i : 0 .. N-1) {
			alive[i] = true; linked[i] = true; inq[i] = true; healthy[i] = true; vh[i] = NONE
		}
		run Leader(); run World();
		for (i : 0 .. N-1) { run Node(i) }
#ifdef WATCHDOG
		for (i : 0 .. N-1) { run Watchdog(i) }
#endif
	}
}
