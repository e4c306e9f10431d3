package stats

// The columns of "show stat", in HAProxy 2.6's order: the header line, the
// CSV, typed and JSON outputs, the page and the Prometheus metrics are all
// read from this one table. Tools such as the Prometheus exporter and hatop
// read the CSV by position, so the order is a contract. The tags are
// HAProxy's three letters (origin, nature, scope) for "show stat typed".

// Field is a column's position.
type Field int

// The columns, named after HAProxy's.
const (
	FPxname Field = iota
	FSvname
	FQcur
	FQmax
	FScur
	FSmax
	FSlim
	FStot
	FBin
	FBout
	FDreq
	FDresp
	FEreq
	FEcon
	FEresp
	FWretr
	FWredis
	FStatus
	FWeight
	FAct
	FBck
	FChkfail
	FChkdown
	FLastchg
	FDowntime
	FQlimit
	FPid
	FIid
	FSid
	FThrottle
	FLbtot
	FTracked
	FType
	FRate
	FRateLim
	FRateMax
	FCheckStatus
	FCheckCode
	FCheckDuration
	FHrsp1xx
	FHrsp2xx
	FHrsp3xx
	FHrsp4xx
	FHrsp5xx
	FHrspOther
	FHanafail
	FReqRate
	FReqRateMax
	FReqTot
	FCliAbrt
	FSrvAbrt
	FCompIn
	FCompOut
	FCompByp
	FCompRsp
	FLastsess
	FLastChk
	FLastAgt
	FQtime
	FCtime
	FRtime
	FTtime
	FAgentStatus
	FAgentCode
	FAgentDuration
	FCheckDesc
	FAgentDesc
	FCheckRise
	FCheckFall
	FCheckHealth
	FAgentRise
	FAgentFall
	FAgentHealth
	FAddr
	FCookie
	FMode
	FAlgo
	FConnRate
	FConnRateMax
	FConnTot
	FIntercepted
	FDcon
	FDses
	FWrew
	FConnect
	FReuse
	FCacheLookups
	FCacheHits
	FSrvIcur
	FSrcIlim
	FQtimeMax
	FCtimeMax
	FRtimeMax
	FTtimeMax
	FEint
	FIdleConnCur
	FSafeConnCur
	FUsedConnCur
	FNeedConnEst
	FUweight
	FAggServerStatus
	FAggServerCheckStatus
	FAggCheckStatus
	FSslSess
	FSslReusedSess
	FSslFailedHandshake
	FH2HeadersRcvd
	FH2DataRcvd
	FH2SettingsRcvd
	FH2RstStreamRcvd
	FH2GoawayRcvd
	FH2DetectedConnProtocolErrors
	FH2DetectedStrmProtocolErrors
	FH2RstStreamResp
	FH2GoawayResp
	FH2OpenConnections
	FH2BackendOpenStreams
	FH2TotalConnections
	FH2BackendTotalStreams
	FH1OpenConnections
	FH1OpenStreams
	FH1TotalConnections
	FH1TotalStreams
	FH1BytesIn
	FH1BytesOut
	FH1SplicedBytesIn
	FH1SplicedBytesOut
	// NumFields is how many columns a row has (the CSV adds a "-"
	// between the generic columns and the modules').
	NumFields
)

// firstModuleField is where the modules' columns (ssl, h2, h1) begin; the
// CSV header and rows put a "-" before it.
const firstModuleField = FSslSess

type valueType uint8

const (
	tSTR valueType = iota
	tU32
	tS32
	tU64
)

func (t valueType) String() string {
	return [...]string{"str", "u32", "s32", "u64"}[t]
}

type column struct {
	name string
	tags string             // origin, nature, scope
	typ  valueType          // the type "typed" output names
	over map[ObjType]string // tags that differ for one kind of row
}

var columns = [NumFields]column{
	FPxname:                       {name: "pxname", tags: "KNS", typ: tSTR},
	FSvname:                       {name: "svname", tags: "KNS", typ: tSTR},
	FQcur:                         {name: "qcur", tags: "MGP", typ: tU32},
	FQmax:                         {name: "qmax", tags: "MMP", typ: tU32},
	FScur:                         {name: "scur", tags: "MGP", typ: tU32},
	FSmax:                         {name: "smax", tags: "MMP", typ: tU32},
	FSlim:                         {name: "slim", tags: "CLP", typ: tU32},
	FStot:                         {name: "stot", tags: "MCP", typ: tU64},
	FBin:                          {name: "bin", tags: "MCP", typ: tU64},
	FBout:                         {name: "bout", tags: "MCP", typ: tU64},
	FDreq:                         {name: "dreq", tags: "MCP", typ: tU64},
	FDresp:                        {name: "dresp", tags: "MCP", typ: tU64},
	FEreq:                         {name: "ereq", tags: "MCP", typ: tU64},
	FEcon:                         {name: "econ", tags: "MCP", typ: tU64},
	FEresp:                        {name: "eresp", tags: "MCP", typ: tU64},
	FWretr:                        {name: "wretr", tags: "MCP", typ: tU64},
	FWredis:                       {name: "wredis", tags: "MCP", typ: tU64},
	FStatus:                       {name: "status", tags: "SGP", typ: tSTR},
	FWeight:                       {name: "weight", tags: "MaP", typ: tU32},
	FAct:                          {name: "act", tags: "MGP", typ: tU32, over: map[ObjType]string{ObjServer: "SGP"}},
	FBck:                          {name: "bck", tags: "MGP", typ: tU32, over: map[ObjType]string{ObjServer: "SGP"}},
	FChkfail:                      {name: "chkfail", tags: "MCP", typ: tU64},
	FChkdown:                      {name: "chkdown", tags: "MCP", typ: tU64},
	FLastchg:                      {name: "lastchg", tags: "MAP", typ: tU32},
	FDowntime:                     {name: "downtime", tags: "MCP", typ: tU32},
	FQlimit:                       {name: "qlimit", tags: "CGS", typ: tU32},
	FPid:                          {name: "pid", tags: "KGP", typ: tU32},
	FIid:                          {name: "iid", tags: "KGS", typ: tU32},
	FSid:                          {name: "sid", tags: "KGS", typ: tU32},
	FThrottle:                     {name: "throttle", tags: "MaP", typ: tU32},
	FLbtot:                        {name: "lbtot", tags: "MCP", typ: tU64},
	FTracked:                      {name: "tracked", tags: "CNS", typ: tSTR},
	FType:                         {name: "type", tags: "CGS", typ: tU32},
	FRate:                         {name: "rate", tags: "MRP", typ: tU32, over: map[ObjType]string{ObjBackend: "MGP"}},
	FRateLim:                      {name: "rate_lim", tags: "CLP", typ: tU32},
	FRateMax:                      {name: "rate_max", tags: "MMP", typ: tU32, over: map[ObjType]string{ObjBackend: "MGP"}},
	FCheckStatus:                  {name: "check_status", tags: "MOP", typ: tSTR},
	FCheckCode:                    {name: "check_code", tags: "MOP", typ: tU32},
	FCheckDuration:                {name: "check_duration", tags: "MDP", typ: tU64},
	FHrsp1xx:                      {name: "hrsp_1xx", tags: "MCP", typ: tU64},
	FHrsp2xx:                      {name: "hrsp_2xx", tags: "MCP", typ: tU64},
	FHrsp3xx:                      {name: "hrsp_3xx", tags: "MCP", typ: tU64},
	FHrsp4xx:                      {name: "hrsp_4xx", tags: "MCP", typ: tU64},
	FHrsp5xx:                      {name: "hrsp_5xx", tags: "MCP", typ: tU64},
	FHrspOther:                    {name: "hrsp_other", tags: "MCP", typ: tU64},
	FHanafail:                     {name: "hanafail", tags: "MCP", typ: tU64},
	FReqRate:                      {name: "req_rate", tags: "MRP", typ: tU32},
	FReqRateMax:                   {name: "req_rate_max", tags: "MMP", typ: tU32},
	FReqTot:                       {name: "req_tot", tags: "MCP", typ: tU64},
	FCliAbrt:                      {name: "cli_abrt", tags: "MCP", typ: tU64},
	FSrvAbrt:                      {name: "srv_abrt", tags: "MCP", typ: tU64},
	FCompIn:                       {name: "comp_in", tags: "MCP", typ: tU64},
	FCompOut:                      {name: "comp_out", tags: "MCP", typ: tU64},
	FCompByp:                      {name: "comp_byp", tags: "MCP", typ: tU64},
	FCompRsp:                      {name: "comp_rsp", tags: "MCP", typ: tU64},
	FLastsess:                     {name: "lastsess", tags: "MAP", typ: tS32},
	FLastChk:                      {name: "last_chk", tags: "MOP", typ: tSTR},
	FLastAgt:                      {name: "last_agt", tags: "MOP", typ: tSTR},
	FQtime:                        {name: "qtime", tags: "MaP", typ: tU32},
	FCtime:                        {name: "ctime", tags: "MaP", typ: tU32},
	FRtime:                        {name: "rtime", tags: "MaP", typ: tU32},
	FTtime:                        {name: "ttime", tags: "MaP", typ: tU32},
	FAgentStatus:                  {name: "agent_status", tags: "MOP", typ: tSTR},
	FAgentCode:                    {name: "agent_code", tags: "MOP", typ: tU32},
	FAgentDuration:                {name: "agent_duration", tags: "MDP", typ: tU64},
	FCheckDesc:                    {name: "check_desc", tags: "MOP", typ: tSTR},
	FAgentDesc:                    {name: "agent_desc", tags: "MOP", typ: tSTR},
	FCheckRise:                    {name: "check_rise", tags: "CGS", typ: tU32},
	FCheckFall:                    {name: "check_fall", tags: "CGS", typ: tU32},
	FCheckHealth:                  {name: "check_health", tags: "CGS", typ: tU32},
	FAgentRise:                    {name: "agent_rise", tags: "CGS", typ: tU32},
	FAgentFall:                    {name: "agent_fall", tags: "CGS", typ: tU32},
	FAgentHealth:                  {name: "agent_health", tags: "CGS", typ: tU32},
	FAddr:                         {name: "addr", tags: "CGS", typ: tSTR},
	FCookie:                       {name: "cookie", tags: "CNS", typ: tSTR},
	FMode:                         {name: "mode", tags: "CGS", typ: tSTR},
	FAlgo:                         {name: "algo", tags: "CGS", typ: tSTR},
	FConnRate:                     {name: "conn_rate", tags: "MRP", typ: tU32},
	FConnRateMax:                  {name: "conn_rate_max", tags: "MMP", typ: tU32},
	FConnTot:                      {name: "conn_tot", tags: "MCP", typ: tU64},
	FIntercepted:                  {name: "intercepted", tags: "MCP", typ: tU64},
	FDcon:                         {name: "dcon", tags: "MCP", typ: tU64},
	FDses:                         {name: "dses", tags: "MCP", typ: tU64},
	FWrew:                         {name: "wrew", tags: "MCP", typ: tU64},
	FConnect:                      {name: "connect", tags: "MCP", typ: tU64},
	FReuse:                        {name: "reuse", tags: "MCP", typ: tU64},
	FCacheLookups:                 {name: "cache_lookups", tags: "MCP", typ: tU64},
	FCacheHits:                    {name: "cache_hits", tags: "MCP", typ: tU64},
	FSrvIcur:                      {name: "srv_icur", tags: "MGP", typ: tU32},
	FSrcIlim:                      {name: "src_ilim", tags: "MGP", typ: tU32},
	FQtimeMax:                     {name: "qtime_max", tags: "MMP", typ: tU32},
	FCtimeMax:                     {name: "ctime_max", tags: "MMP", typ: tU32},
	FRtimeMax:                     {name: "rtime_max", tags: "MMP", typ: tU32},
	FTtimeMax:                     {name: "ttime_max", tags: "MMP", typ: tU32},
	FEint:                         {name: "eint", tags: "MCP", typ: tU64},
	FIdleConnCur:                  {name: "idle_conn_cur", tags: "MGP", typ: tU32},
	FSafeConnCur:                  {name: "safe_conn_cur", tags: "MGP", typ: tU32},
	FUsedConnCur:                  {name: "used_conn_cur", tags: "MGP", typ: tU32},
	FNeedConnEst:                  {name: "need_conn_est", tags: "MGP", typ: tU32},
	FUweight:                      {name: "uweight", tags: "MaP", typ: tU32},
	FAggServerStatus:              {name: "agg_server_status", tags: "MGP", typ: tU32},
	FAggServerCheckStatus:         {name: "agg_server_check_status", tags: "MGP", typ: tU32},
	FAggCheckStatus:               {name: "agg_check_status", tags: "MGP", typ: tU32},
	FSslSess:                      {name: "ssl_sess", tags: "MCP", typ: tU64},
	FSslReusedSess:                {name: "ssl_reused_sess", tags: "MCP", typ: tU64},
	FSslFailedHandshake:           {name: "ssl_failed_handshake", tags: "MCP", typ: tU64},
	FH2HeadersRcvd:                {name: "h2_headers_rcvd", tags: "MCP", typ: tU64},
	FH2DataRcvd:                   {name: "h2_data_rcvd", tags: "MCP", typ: tU64},
	FH2SettingsRcvd:               {name: "h2_settings_rcvd", tags: "MCP", typ: tU64},
	FH2RstStreamRcvd:              {name: "h2_rst_stream_rcvd", tags: "MCP", typ: tU64},
	FH2GoawayRcvd:                 {name: "h2_goaway_rcvd", tags: "MCP", typ: tU64},
	FH2DetectedConnProtocolErrors: {name: "h2_detected_conn_protocol_errors", tags: "MCP", typ: tU64},
	FH2DetectedStrmProtocolErrors: {name: "h2_detected_strm_protocol_errors", tags: "MCP", typ: tU64},
	FH2RstStreamResp:              {name: "h2_rst_stream_resp", tags: "MCP", typ: tU64},
	FH2GoawayResp:                 {name: "h2_goaway_resp", tags: "MCP", typ: tU64},
	FH2OpenConnections:            {name: "h2_open_connections", tags: "MGP", typ: tU64},
	FH2BackendOpenStreams:         {name: "h2_backend_open_streams", tags: "MGP", typ: tU64},
	FH2TotalConnections:           {name: "h2_total_connections", tags: "MCP", typ: tU64},
	FH2BackendTotalStreams:        {name: "h2_backend_total_streams", tags: "MCP", typ: tU64},
	FH1OpenConnections:            {name: "h1_open_connections", tags: "MGP", typ: tU64},
	FH1OpenStreams:                {name: "h1_open_streams", tags: "MGP", typ: tU64},
	FH1TotalConnections:           {name: "h1_total_connections", tags: "MCP", typ: tU64},
	FH1TotalStreams:               {name: "h1_total_streams", tags: "MCP", typ: tU64},
	FH1BytesIn:                    {name: "h1_bytes_in", tags: "MCP", typ: tU64},
	FH1BytesOut:                   {name: "h1_bytes_out", tags: "MCP", typ: tU64},
	FH1SplicedBytesIn:             {name: "h1_spliced_bytes_in", tags: "MCP", typ: tU64},
	FH1SplicedBytesOut:            {name: "h1_spliced_bytes_out", tags: "MCP", typ: tU64},
}
