package stats

import (
	_ "embed"
	"html"
	"strconv"
	"strings"
	"time"

	"github.com/halo-lb/halo/config"
)

//go:embed assets/page.css
var pageCSS string

// The page's tables: HAProxy's column groups, each column a Field of the
// one table (so the page shows what show stat shows).
type pageColumn struct {
	title string
	field Field
}

type pageGroup struct {
	title   string
	columns []pageColumn
}

var pageGroups = []pageGroup{
	{"Queue", []pageColumn{{"Cur", FQcur}, {"Max", FQmax}, {"Limit", FQlimit}}},
	{"Session rate", []pageColumn{{"Cur", FRate}, {"Max", FRateMax}, {"Limit", FRateLim}}},
	{"Sessions", []pageColumn{{"Cur", FScur}, {"Max", FSmax}, {"Limit", FSlim}, {"Total", FStot}, {"LbTot", FLbtot}, {"Last", FLastsess}}},
	{"Bytes", []pageColumn{{"In", FBin}, {"Out", FBout}}},
	{"Denied", []pageColumn{{"Req", FDreq}, {"Resp", FDresp}}},
	{"Errors", []pageColumn{{"Req", FEreq}, {"Conn", FEcon}, {"Resp", FEresp}}},
	{"Warnings", []pageColumn{{"Retr", FWretr}, {"Redis", FWredis}}},
	{"Server", []pageColumn{{"Status", FStatus}, {"LastChk", FLastChk}, {"Wght", FWeight}, {"Act", FAct}, {"Bck", FBck},
		{"Chk", FChkfail}, {"Dwn", FChkdown}, {"Dwntme", FDowntime}, {"Thrtle", FThrottle}}},
}

// pageLegend names the row colours.
var pageLegend = [][2]string{
	{"up", "active UP"}, {"up backup", "backup UP"}, {"goingdown", "UP, going down"}, {"goingup", "DOWN, going up"},
	{"down", "DOWN"}, {"nolb", "NOLB (stopping)"}, {"drain", "DRAIN"}, {"maint", "MAINT"}, {"nocheck", "not checked"},
}

// renderPage writes the page. It appends to one buffer rather than going
// through html/template, so that 1,000 backends render in milliseconds.
func (s *Stats) renderPage(t *Table, in *Info, page *config.StatsPage, o pageOptions, frontend, uri, token string) []byte {
	var b strings.Builder
	b.Grow(4096 + len(t.Rows)*900)
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n")
	if page.Refresh > 0 && !o.noRefresh {
		// Reloading goes to the page without the last action's result,
		// which is news only once.
		b.WriteString(`<meta http-equiv="refresh" content="` + strconv.Itoa(int((page.Refresh+time.Second-1)/time.Second)) +
			`;url=` + esc(page.URI+o.switches()) + `">` + "\n")
	}
	// The page has no icon of its own: saying so keeps the browser from
	// asking for /favicon.ico, which is not the page's and would go to the
	// frontend's backend.
	b.WriteString(`<link rel="icon" href="data:,">` + "\n")
	b.WriteString("<title>Statistics Report for halo on " + esc(in.Get("node")) + "</title>\n<style>\n" + pageCSS + "</style></head>\n<body>\n")
	b.WriteString("<h1>halo statistics report")
	if !page.HideVersion {
		b.WriteString(` <span class="version">version ` + esc(s.version) + `</span>`)
	}
	b.WriteString("</h1>\n")
	s.writeSummary(&b, in, page, o, uri)
	if o.status != "" {
		b.WriteString(`<div class="status ` + esc(o.status) + `" id="action-status">` + esc(actionStatusText(o.status)) + "</div>\n")
	}
	for i := 0; i < len(t.Rows); {
		j := i + 1
		for j < len(t.Rows) && t.Rows[j].IID == t.Rows[i].IID {
			j++
		}
		s.writeProxy(&b, t.Rows[i:j], page, o, token)
		i = j
	}
	b.WriteString("</body></html>\n")
	return []byte(b.String())
}

func actionStatusText(st string) string {
	switch st {
	case "DONE":
		return "Action applied."
	case "PART":
		return "Action applied to some of the servers only."
	case "NONE":
		return "No server was selected: nothing done."
	case "ERRP":
		return "Unknown action: nothing done."
	}
	return st
}

func esc(s string) string { return html.EscapeString(s) }

func (s *Stats) writeSummary(b *strings.Builder, in *Info, page *config.StatsPage, o pageOptions, uri string) {
	base := page.URI
	b.WriteString(`<table class="summary"><tr><td><b>General process information</b><br>` + "\n")
	b.WriteString("pid = " + esc(in.Get("Pid")) + " (process #1, nbproc = 1, nbthread = " + esc(in.Get("Nbthread")) + ")<br>\n")
	b.WriteString("uptime = " + esc(in.Get("Uptime")) + "<br>\n")
	b.WriteString("maxconn = " + esc(in.Get("Maxconn")) + "; current conns = " + esc(in.Get("CurrConns")) +
		"; total conns = " + esc(in.Get("CumConns")) + "; total requests = " + esc(in.Get("CumReq")) + "<br>\n")
	b.WriteString("Running tasks (goroutines): " + esc(in.Get("Tasks")) + "; listeners = " + esc(in.Get("Listeners")) + "</td>\n")
	b.WriteString(`<td><table class="legend">`)
	for _, l := range pageLegend {
		b.WriteString(`<tr class="` + l[0] + `"><td class="swatch"></td><td>` + l[1] + "</td></tr>")
	}
	b.WriteString("</table></td>\n<td><b>Display options</b><br>\n")
	if o.noRefresh || page.Refresh == 0 {
		b.WriteString(`<a href="` + esc(base) + `">Refresh now</a><br>` + "\n")
	} else {
		b.WriteString(`<a href="` + esc(base+";norefresh") + `">Disable refresh</a><br>` + "\n")
	}
	if o.upOnly {
		b.WriteString(`<a href="` + esc(base) + `">Show all servers</a><br>` + "\n")
	} else {
		b.WriteString(`<a href="` + esc(base+";up") + `">Hide 'DOWN' servers</a><br>` + "\n")
	}
	b.WriteString(`<a href="` + esc(base+";csv") + `">CSV export</a><br>` + "\n")
	b.WriteString(`<a href="` + esc(base+";json") + `">JSON export</a>`)
	if page.Prometheus != "" {
		b.WriteString(`<br><a href="` + esc(page.Prometheus) + `">Prometheus metrics</a>`)
	}
	b.WriteString("</td></tr></table>\n")
	_ = uri
}

// writeProxy writes one proxy's table: its FRONTEND row, its servers, its
// BACKEND row; with admin and a token, the servers can be ticked and an
// action applied to them.
func (s *Stats) writeProxy(b *strings.Builder, rows []Row, page *config.StatsPage, o pageOptions, token string) {
	name := rows[0].Proxy()
	hasServers := false
	for i := range rows {
		hasServers = hasServers || rows[i].Type == ObjServer
	}
	admin := token != "" && hasServers
	if admin {
		b.WriteString(`<form class="actions" method="post" action="` + esc(page.URI+o.switches()) + `">` + "\n")
		b.WriteString(`<input type="hidden" name="b" value="` + esc(name) + `"><input type="hidden" name="token" value="` + esc(token) + `">` + "\n")
	}
	b.WriteString(`<table class="proxy" id="proxy-` + esc(name) + `"><tr><th class="pxname" colspan="` + strconv.Itoa(pageColumnCount(admin)) + `">` + esc(name) + "</th></tr>\n<tr>")
	if admin {
		b.WriteString(`<th rowspan="2"></th>`)
	}
	b.WriteString(`<th rowspan="2"></th>`)
	for _, g := range pageGroups {
		b.WriteString(`<th colspan="` + strconv.Itoa(len(g.columns)) + `">` + g.title + "</th>")
	}
	b.WriteString("</tr>\n<tr>")
	for _, g := range pageGroups {
		for _, c := range g.columns {
			b.WriteString("<th>" + c.title + "</th>")
		}
	}
	b.WriteString("</tr>\n")
	for i := range rows {
		r := &rows[i]
		class := "frontend"
		switch r.Type {
		case ObjBackend:
			class = "backend"
		case ObjServer:
			class = serverClass(r)
			if o.upOnly && strings.HasPrefix(r.Str(FStatus), "DOWN") {
				continue
			}
		}
		b.WriteString(`<tr class="` + class + `" id="row-` + esc(name) + "-" + esc(r.Name()) + `" data-status="` + esc(r.Str(FStatus)) + `">`)
		if admin {
			b.WriteString("<td>")
			if r.Type == ObjServer {
				b.WriteString(`<input type="checkbox" name="s" value="` + esc(r.Name()) + `">`)
			}
			b.WriteString("</td>")
		}
		b.WriteString(`<td class="name">` + esc(r.Name()) + "</td>")
		for _, g := range pageGroups {
			for _, c := range g.columns {
				b.WriteString("<td>" + esc(pageCell(r, c.field)) + "</td>")
			}
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n")
	if admin {
		b.WriteString(`Choose the action to perform on the checked servers: <select name="action">` +
			`<option value="">---</option>` +
			`<option value="ready">Set state to READY</option><option value="drain">Set state to DRAIN</option>` +
			`<option value="maint">Set state to MAINT</option>` +
			`<option value="hrunn">Health: UP</option><option value="hnolb">Health: STOPPING</option>` +
			`<option value="hdown">Health: DOWN</option>` +
			`<option value="dhlth">Health: disable checks</option><option value="ehlth">Health: enable checks</option>` +
			`<option value="arunn">Agent: UP</option><option value="adown">Agent: DOWN</option>` +
			`<option value="dagent">Agent: disable checks</option><option value="eagent">Agent: enable checks</option>` +
			`<option value="shutdown">Kill sessions</option></select> <input type="submit" value="Apply"></form>` + "\n")
	}
}

func pageColumnCount(admin bool) int {
	n := 1
	if admin {
		n++
	}
	for _, g := range pageGroups {
		n += len(g.columns)
	}
	return n
}

// pageCell is a cell as the page shows it: times as HAProxy writes them,
// the rest as in the CSV.
func pageCell(r *Row, f Field) string {
	if !r.Set(f) {
		return ""
	}
	switch f {
	case FLastsess:
		if r.Num(f) < 0 {
			return ""
		}
		return ageString(time.Duration(r.Num(f)) * time.Second)
	case FDowntime:
		return ageString(time.Duration(r.Num(f)) * time.Second)
	case FStatus:
		st := r.Str(f)
		if r.Type == ObjServer && r.Set(FLastchg) {
			st += " " + ageString(time.Duration(r.Num(FLastchg))*time.Second)
		}
		return st
	case FLastChk:
		if r.Set(FCheckStatus) {
			d := r.Str(FCheckStatus)
			if r.Set(FCheckDuration) {
				d += " in " + r.Str(FCheckDuration) + "ms"
			}
			return d
		}
	}
	return r.Str(f)
}
