/*
 * The VIP protocol of halo's cluster module, for the SPIN model checker.
 *
 * What is checked (scripts/check-model runs it):
 *   safety   at every step, at most one node has the VIP in its kernel
 *            while its link is up (it answers ARP for it on the network);
 *   takeover a VIP is assigned to a node only when no other node has it
 *            active: the previous holder released it (it removed it before
 *            saying so, through the replicated table), was fenced (its
 *            fence agent confirmed it off), or, with a watchdog, its
 *            self-fencing bound ran out;
 * over crashes (the process dies; the address stays in the kernel, which
 * goes on answering ARP), pauses (SIGSTOP: the same, until SIGCONT),
 * partitions (a node cut off from the others, still on the clients'
 * network), health flaps, lost and late updates (each node applies the
 * replicated table when it can, not when it changes), failed fencing, and
 * a spurious suspicion (the leader fences a node that was fine).
 *
 * Consensus is abstract: a change of the replicated table is one atomic
 * step, taken only while a majority of nodes are alive and connected (what
 * Raft gives: a committed entry, in one order for everyone). Time is
 * abstract too: a node's lease may run out at any moment; the watchdog's
 * bound is a guard on the leader's step (see expire).
 *
 * Compile-time switches:
 *   WATCHDOG          nodes have a watchdog-backed lease (SBD style)
 *   BROKEN_TAKEOVER   the leader moves a VIP off an unresponsive holder
 *                     without fencing (what keepalived does): must fail
 *   BROKEN_LEASE      a node keeps its VIP without a lease: must fail
 */

#define N        3
#define MAJORITY 2
#define NONE     255

#ifndef FAULTS
#define FAULTS   3      /* faults the environment may inject */
#endif
#ifndef EPOCHS
#define EPOCHS   4      /* assignments, to bound the state space */
#endif

/* The replicated table, as committed. */
byte holder = NONE;     /* the node the VIP is assigned to */
byte epoch = 0;         /* counts assignments */
bool fenced[N];         /* fenced, until an operator unfences it */

/* The world. */
bool alive[N];          /* the process runs (not crashed, not paused) */
bool linked[N];         /* the node's link is up (fencing takes it down) */
bool inq[N];            /* connected to the others (not partitioned) */
bool kernel[N];         /* the VIP is configured in the node's kernel */
bool healthy[N];        /* the node's frontends are up */

/* Each node's own state. */
byte view[N];           /* the holder, as the node last applied the table */
bool current[N];        /* and whether that view is of the latest
                         * assignment (rather than an epoch number: the
                         * only question asked of it) */
bool lease[N];          /* the node may act on its view */
bool removed[N];        /* it removed the VIP of viewEpoch, and may say so */

byte faults = 0;

#define active(i)  (kernel[i] && linked[i])
#define nactive    (active(0) + active(1) + active(2))
#define connected(i) (alive[i] && inq[i] && linked[i])
#define quorum     (connected(0) + connected(1) + connected(2) >= MAJORITY)

ltl safety { [] (nactive <= 1) }

/* Every change of the table makes each node's view stale until it
 * applies the table again. */
inline stale() {
	current[0] = false; current[1] = false; current[2] = false
}

/* A node's agent: it runs only while its process does. */
proctype Node(byte i) {
	do
	/* Apply the table and renew the lease: a committed heartbeat of its
	 * own proves a majority heard it. */
	:: atomic { alive[i] && inq[i] && linked[i] && quorum ->
		if
		:: view[i] != holder || !current[i] ->
			view[i] = holder; current[i] = true; removed[i] = false
		:: else -> skip
		fi;
		lease[i] = true }
	/* The lease runs out (a timer: at any moment). */
	:: atomic { alive[i] && lease[i] -> lease[i] = false }
	/* Add the VIP: assigned here, with a lease, healthy, not fenced. */
	:: atomic { alive[i] && !kernel[i] && view[i] == i && lease[i] && healthy[i] && !removed[i] ->
		kernel[i] = true }
	/* Remove it when any of that stops holding. */
#ifdef BROKEN_LEASE
	:: atomic { alive[i] && kernel[i] && (view[i] != i || !healthy[i]) ->
		kernel[i] = false; removed[i] = true }
#else
	:: atomic { alive[i] && kernel[i] && (view[i] != i || !lease[i] || !healthy[i]) ->
		kernel[i] = false; removed[i] = true }
#endif
	/* Say so: release the assignment it no longer holds. */
	:: atomic { connected(i) && quorum && removed[i] && !kernel[i] && holder == i && current[i] ->
		holder = NONE; stale() }
	od
}

/* The leader's decisions: each is a committed change of the table. */
proctype Leader() {
	byte j;
	do
	/* Assign a free VIP to a node that is not fenced. */
	:: atomic { quorum && holder == NONE && epoch < EPOCHS ->
		select(j : 0 .. N-1);
		if
		:: !fenced[j] ->
			assert(nactive == 0 || (nactive == 1 && active(j)));
			holder = j; epoch++; stale()
		:: else -> skip
		fi }
	/* Fence the holder when it seems gone (or spuriously: fencing a
	 * healthy node is always safe). The agent confirms the node is off;
	 * only then is the fact committed. */
	:: atomic { quorum && holder != NONE && !fenced[holder] ->
		if
		:: linked[holder] = false; fenced[holder] = true; holder = NONE; stale()  /* fenced */
		:: skip                                                         /* the agent failed: the VIP stays down */
		fi }
#ifdef WATCHDOG
	/* The self-fencing bound ran out: the holder has not renewed its
	 * lease for lease x factor + the watchdog's timeout, so it either
	 * removed the VIP or its watchdog reset the machine. */
	:: atomic { quorum && holder != NONE && !fenced[holder] && !lease[holder] &&
	            (!kernel[holder] || !alive[holder]) ->
		kernel[holder] = false;    /* a reset clears the kernel's addresses */
		holder = NONE; stale() }
#endif
#ifdef BROKEN_TAKEOVER
	/* Take the VIP away from a holder that does not answer, unfenced. */
	:: atomic { quorum && holder != NONE && !connected(holder) -> holder = NONE; stale() }
#endif
	od
}

/* Faults, at most FAULTS of them. */
proctype World() {
	byte i;
	do
	:: faults < FAULTS ->
		select(i : 0 .. N-1);
		atomic {
			if
			:: alive[i] -> alive[i] = false; lease[i] = false  /* crash or pause: the kernel keeps the VIP */
			:: !alive[i] -> alive[i] = true                    /* restart or resume */
			:: inq[i] = !inq[i]                               /* partition, or its end */
			:: healthy[i] = !healthy[i]                       /* the frontends go down, or come back */
			fi;
			faults++ }
	:: faults >= FAULTS -> break
	od
}

init {
	byte i;
	atomic {
		for (i : 0 .. N-1) {
			alive[i] = true; linked[i] = true; inq[i] = true; healthy[i] = true; view[i] = NONE
		}
		run Leader(); run World();
		for (i : 0 .. N-1) { run Node(i) }
	}
}
